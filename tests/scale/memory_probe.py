"""Child process of the flat-memory test: generate a batch file, or run the batch steps on one.

    python -m tests.scale.memory_probe generate ROWS PATH [PATH_OF_FIRST_N:N]
    python -m tests.scale.memory_probe steps PATH [PATH ...]
    python -m tests.scale.memory_probe split ROWS PATH
    python -m tests.scale.memory_probe training WARM_UP_PATH PATH

`steps` prints a JSON object: the peak RSS (MB) after a warm-up on the first file's first rows in a
scratch environment (every library loaded), then after ingest, features and the training set of
each file in a fresh scratch environment of its own; the chunk and the engines' memory limits are
set small, so growth past the warm-up is what the steps hold, whatever the file's size.

`split` writes a training split of ROWS rows; `training` loads one as the training job does (encoder
and target fitted, tensors filled) after a warm-up on a small one, and prints the peak RSS (MB)
before and after, and the size of the tensors, which the job must hold whatever it streams.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

CHUNK_ROWS = 100_000
MEMORY_LIMIT = "256MB"
BLOCK_ROWS = 250_000


def _generate(rows: int, path: Path, prefixes: list[str]) -> None:
    """`rows` example events: a generated block repeated with fresh keys and entities (generating
    every row costs about 6 s per million; a repeat costs nothing and is as large to the pipeline)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from mlops.settings import load_settings
    from pipelines.datagen.examples import generate_example
    from pipelines.usecase import load_usecase

    usecase = load_usecase(load_settings("local").pipeline.usecase_path())
    dataset = usecase.dataset
    block = pa.Table.from_pandas(generate_example(usecase, BLOCK_ROWS, 7), preserve_index=False)
    renamed = [*dataset.primary_key, dataset.entity_key]
    copies = []
    for copy in range(-(-rows // BLOCK_ROWS)):
        part = block
        for name in renamed:
            index = part.schema.get_field_index(name)
            part = part.set_column(
                index, name, pc.binary_join_element_wise(part.column(name).cast(pa.string()), f"r{copy}", "-")
            )
        copies.append(part)
    events = pa.concat_tables(copies).slice(0, rows)
    pq.write_table(events, path)
    for prefix in prefixes:
        target, count = prefix.rsplit(":", 1)
        pq.write_table(events.slice(0, int(count)), target)


def _steps(sources: list[Path]) -> None:
    import pyarrow.parquet as pq

    from bench.common import peak_rss_mb, scratch_environment
    from pipelines.training import steps

    def run(path: Path) -> None:
        with scratch_environment():
            ctx = steps.open_environment("local")
            pipeline = ctx.settings.pipeline.model_copy(
                update={
                    "ingest": ctx.settings.pipeline.ingest.model_copy(update={"chunk_rows": CHUNK_ROWS}),
                    "split": ctx.settings.pipeline.split.model_copy(update={"memory_limit": MEMORY_LIMIT}),
                    "features": ctx.settings.pipeline.features.model_copy(
                        update={"query_engine_from_rows": 0}
                    ),
                }
            )
            ctx = dataclasses.replace(ctx, settings=ctx.settings.model_copy(update={"pipeline": pipeline}))
            ctx.platform.query.memory_limit = MEMORY_LIMIT  # type: ignore[attr-defined]
            steps.ingest_step(ctx, path)
            steps.prepare_step(ctx, steps.feature_step(ctx))

    warm = sources[0].with_name("warm-up.parquet")
    pq.write_table(pq.ParquetFile(sources[0]).read_row_group(0).slice(0, 20_000), warm)
    run(warm)
    peaks = {"baseline_mb": peak_rss_mb()}
    for source in sources:
        run(source)
        peaks[source.stem] = peak_rss_mb()
    print(json.dumps(peaks))


def _split_file(rows: int, path: Path, seed: int) -> None:
    """A training split shaped like the example's: twelve numbers, two categories, a label."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns = {f"n{i}": rng.lognormal(2, 1, rows) for i in range(12)}
    columns["country"] = pa.array(rng.choice([f"c{i}" for i in range(150)], rows))
    columns["plan"] = pa.array(rng.choice(["basic", "pro", "team"], rows))
    columns["label"] = rng.integers(0, 2, rows)
    pq.write_table(pa.table(columns), path, row_group_size=100_000)


def _training(warm: Path, split: Path) -> None:
    from bench.common import peak_rss_mb
    from pipelines.training.split_file import SplitFile

    def load(path: Path) -> int:
        split = SplitFile(path, [f"n{i}" for i in range(12)], {"country": None, "plan": None}, "label")
        tensors = split.tensors(*split.fit("binary"))
        return sum(
            t.element_size() * t.nelement() for t in (tensors.numeric, tensors.categorical, tensors.labels)
        )

    load(warm)
    baseline = peak_rss_mb()
    tensor_bytes = load(split)
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak_rss_mb(), "tensor_mb": tensor_bytes / 2**20}))


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        _generate(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
    elif sys.argv[1] == "split":
        _split_file(int(sys.argv[2]), Path(sys.argv[3]), seed=int(sys.argv[2]))
    elif sys.argv[1] == "training":
        _training(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        _steps([Path(arg) for arg in sys.argv[2:]])
