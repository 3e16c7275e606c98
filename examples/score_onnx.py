"""Score rows with an exported model, using nothing but onnxruntime, numpy and the standard library.

    python examples/score_onnx.py MODEL_DIR rows.csv > scores.csv

MODEL_DIR holds `model.onnx` and `model.schema.json` (a registered version's folder, or a training
run's `model/` folder). The CSV has a header and the schema's feature columns; an empty cell is a
missing value. One score per row is written to stdout.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime


def score(model_dir: Path, rows: list[dict[str, str]]) -> np.ndarray:
    """The model's answer for each row (values as text, as a CSV holds them)."""
    schema = json.loads((model_dir / "model.schema.json").read_text())
    feeds = {}
    for spec in schema["inputs"]:
        if spec["type"] == "float64":
            feeds[spec["name"]] = np.array(
                [
                    [float(row[c]) if row.get(c, "") != "" else np.nan for c in spec["columns"]]
                    for row in rows
                ],
                dtype=np.float64,
            ).reshape(len(rows), len(spec["columns"]))
        else:
            feeds[spec["name"]] = np.array([row.get(spec["name"], "") for row in rows], dtype=object)
    session = onnxruntime.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    (scores,) = session.run([schema["output"]["name"]], feeds)
    return np.asarray(scores)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with Path(argv[1]).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    writer = csv.writer(sys.stdout)
    writer.writerow(["score"])
    for value in score(Path(argv[0]), rows):
        writer.writerow([repr(float(value))])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
