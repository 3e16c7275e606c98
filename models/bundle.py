"""The model bundle: weights plus everything needed to score a feature frame (encoder, architecture).

Training writes it, the registry versions it, evaluation and serving load it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.encoding import FeatureEncoder
from models.moments import RunningMoments
from models.network import TabularNet
from models.threads import configure_threads

WEIGHTS_FILE = "weights.pt"
META_FILE = "bundle.json"
BUNDLE_FILES = (WEIGHTS_FILE, META_FILE)
BUNDLE_FORMAT = 1


@dataclass(frozen=True)
class Target:
    """What the network learns: the task, the target's scaling (regression learns a standardised
    target) and the constant baseline fitted on the same training split (base rate, or mean)."""

    task: str = "binary"
    mean: float = 0.0
    std: float = 1.0
    baseline: float | None = None

    @classmethod
    def fit(cls, task: str, labels: np.ndarray) -> Target:
        return cls.of_moments(task, RunningMoments().add(labels))

    @classmethod
    def of_moments(cls, task: str, labels: RunningMoments) -> Target:
        """The target of a training split whose labels were accumulated batch by batch."""
        baseline = labels.mean if labels.count else None
        if task == "binary":
            return cls(task, baseline=baseline)
        if not labels.count:
            return cls(task, 0.0, 1.0, None)
        return cls(task, labels.mean, labels.std if labels.std > 1e-12 else 1.0, baseline)

    def scaled(self, labels: np.ndarray) -> np.ndarray:
        """Labels as the network learns them."""
        return labels if self.task == "binary" else (labels - self.mean) / self.std


PREDICT_BLOCK_ROWS = 262_144


@dataclass
class ModelBundle:
    network: TabularNet
    encoder: FeatureEncoder
    architecture: dict[str, Any]
    label: str
    target: Target = field(default_factory=Target)

    @classmethod
    def build(
        cls,
        encoder: FeatureEncoder,
        architecture: dict[str, Any],
        label: str,
        target: Target | None = None,
    ) -> ModelBundle:
        configure_threads()  # every process that trains or scores builds a bundle first
        network = TabularNet(
            numeric_dim=len(encoder.numeric),
            cardinalities=encoder.cardinalities(),
            embedding_dim=int(architecture["embedding_dim"]),
            hidden_sizes=tuple(architecture["hidden_sizes"]),
            dropout=float(architecture["dropout"]),
        )
        return cls(network, encoder, architecture, label, target or Target())

    @property
    def task(self) -> str:
        return self.target.task

    @property
    def feature_names(self) -> list[str]:
        return self.encoder.numeric + list(self.encoder.categorical)

    def predict_proba(self, frame: pd.DataFrame, batch_size: int = 65_536) -> np.ndarray:
        """The positive class's probability per row (binary models only)."""
        if self.task != "binary":
            raise TypeError(f"a {self.task} model predicts values, not probabilities: use predict()")
        return self.predict(frame, batch_size)

    def predict(self, frame: pd.DataFrame, batch_size: int = 65_536) -> np.ndarray:
        """The model's answer per row of a frame holding the bundle's feature columns: the
        positive class's probability (binary) or the predicted value (regression)."""
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise KeyError(f"feature frame lacks columns: {', '.join(missing)}")
        # Encoded in row blocks: the float64 copy of a block's numbers, not of the whole frame's.
        answers = [
            self._forward(
                self.encoder.numeric_tensor(part), self.encoder.categorical_tensor(part), batch_size
            )
            for part in (
                frame.iloc[start : start + PREDICT_BLOCK_ROWS]
                for start in range(0, max(len(frame), 1), PREDICT_BLOCK_ROWS)
            )
        ]
        return answers[0] if len(answers) == 1 else np.concatenate(answers)

    def predict_arrays(
        self, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]], batch_size: int = 65_536
    ) -> np.ndarray:
        """`predict`, from the numeric features as a float array in encoder order and each categorical
        feature as a sequence (serving validates them that way; a frame would cost more than the
        forward pass on a one-row request)."""
        return self._forward(
            self.encoder.numeric_tensor_of(numeric),
            self.encoder.categorical_tensor_of(categorical, len(numeric)),
            batch_size,
        )

    def encode(
        self, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's inputs of raw feature arrays: encoded numbers and category indexes."""
        return (
            self.encoder.numeric_tensor_of(numeric),
            self.encoder.categorical_tensor_of(categorical, len(numeric)),
        )

    def predict_encoded(
        self, numeric: torch.Tensor, categorical: torch.Tensor, batch_size: int = 65_536
    ) -> np.ndarray:
        """`predict` from inputs already encoded (by `encode`): for scoring the same rows many times."""
        return self._forward(numeric, categorical, batch_size)

    def shuffleable(
        self, numeric: np.ndarray, categorical: Mapping[str, Sequence[object]]
    ) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor, torch.Tensor], np.ndarray]]:
        """Rows as two tensors (a column per numeric feature, then a column per categorical one, in
        `feature_names` order) in which shuffling one column across rows is shuffling that raw
        feature, and the function that scores them. Here the network's own inputs (`encode`): each
        encoded column depends on its raw feature alone."""
        numbers, indexes = self.encode(numeric, categorical)
        return numbers, indexes, self.predict_encoded

    def answer(self, logits: torch.Tensor) -> torch.Tensor:
        """The model's answer of its logits, differentiably: a probability, or a value in label units."""
        if self.task == "binary":
            return torch.sigmoid(logits)
        return logits * self.target.std + self.target.mean

    @torch.no_grad()
    def _forward(self, numeric: torch.Tensor, categorical: torch.Tensor, batch_size: int) -> np.ndarray:
        if self.network.training:  # eval() walks every module: ~70 us, a third of a one-row forward
            self.network.eval()
        device = next(self.network.parameters()).device
        out = []
        for start in range(0, len(numeric), batch_size):
            logits = self.network(
                numeric[start : start + batch_size].to(device),
                categorical[start : start + batch_size].to(device),
            )
            raw = logits.float()
            if self.task == "binary":
                out.append(torch.sigmoid(raw).cpu().numpy())
            else:
                out.append((raw.double() * self.target.std + self.target.mean).cpu().numpy())
        if len(out) == 1:
            return out[0]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def to_files(self) -> dict[str, bytes]:
        buffer = io.BytesIO()
        torch.save({k: v.cpu() for k, v in self.network.state_dict().items()}, buffer)
        meta = {
            "format": BUNDLE_FORMAT,
            "architecture": self.architecture,
            "encoder": self.encoder.to_dict(),
            "label": self.label,
            "target": asdict(self.target),
        }
        return {WEIGHTS_FILE: buffer.getvalue(), META_FILE: json.dumps(meta, indent=2).encode()}

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> ModelBundle:
        meta = json.loads(files[META_FILE])
        if meta.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"unsupported model bundle format {meta.get('format')!r}")
        if "segmented" in meta:  # a model per segment and a fallback (models/segmented.py)
            from models.segmented import SegmentedBundle

            return SegmentedBundle.from_segmented_files(files)
        target = Target(**meta["target"]) if "target" in meta else Target()  # older bundles: binary
        bundle = cls.build(
            FeatureEncoder.from_dict(meta["encoder"]), meta["architecture"], meta["label"], target
        )
        state = torch.load(io.BytesIO(files[WEIGHTS_FILE]), map_location="cpu", weights_only=True)
        bundle.network.load_state_dict(state)
        bundle.network.eval()
        return bundle

    @classmethod
    def load(cls, directory: Path) -> ModelBundle:
        """Load a bundle from a directory (a registry version or a run's model folder)."""
        return cls.from_files({name: (directory / name).read_bytes() for name in BUNDLE_FILES})
