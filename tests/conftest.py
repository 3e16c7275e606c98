"""Shared fixtures: a local environment in a temporary directory, small example data, Prefect."""

from __future__ import annotations

import os

# Before anything imports boto3, prefect or mlflow.
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from mlops.runtime import configure_runtime

configure_runtime()

from mlops.bootstrap import bring_up_local  # noqa: E402
from mlops.paths import PACKAGE_ROOT  # noqa: E402
from mlops.settings import EnvironmentSettings, load_settings  # noqa: E402
from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events  # noqa: E402
from pipelines.platform import Platform, connect  # noqa: E402
from pipelines.usecase import UseCase, load_usecase  # noqa: E402

if TYPE_CHECKING:
    from infra.offline import Plan

CLOUD_ENVIRONMENTS = ("dev", "staging", "prod")


@pytest.fixture(scope="session", autouse=True)
def _scratch_under_pytest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Temporary files of the tests and of their child processes land under pytest's temporary
    root (which pytest prunes), not in /tmp: a job a test kills on purpose leaves its scratch behind."""
    import tempfile

    previous = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp_path_factory.mktemp("scratch"))
    tempfile.tempdir = None  # read TMPDIR again
    yield
    if previous is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous
    tempfile.tempdir = None


@pytest.fixture(scope="session")
def usecase() -> UseCase:
    return load_usecase(PACKAGE_ROOT / "usecases" / "churn.yaml")


@pytest.fixture(scope="session")
def small_events(usecase: UseCase) -> pd.DataFrame:
    """20,000 example events: big enough to learn from, small enough to train in seconds."""
    return generate_churn_events(usecase.dataset, ChurnDataConfig(rows=20_000, seed=11))


@pytest.fixture
def local_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "local"
    monkeypatch.setenv("MLOPS_LOCAL_ROOT", str(root))
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(PACKAGE_ROOT))
    return root


@pytest.fixture
def local_settings(local_root: Path) -> EnvironmentSettings:
    return load_settings("local")


@pytest.fixture
def platform(local_settings: EnvironmentSettings) -> Platform:
    return connect(bring_up_local(local_settings).contract)


@pytest.fixture(scope="session")
def trained(usecase: UseCase) -> tuple[Any, pd.DataFrame]:
    """A model trained once per session on 60,000 generated events, and 3,000 test rows of features.

    Same encoder, network, training loop and bundle as the pipeline.
    """
    import torch

    from mlops.settings import TrainingSettings
    from models.bundle import ModelBundle
    from models.encoding import FeatureEncoder
    from models.train import TensorSplit, fit
    from pipelines.features.compute import compute_window_features, point_in_time_join
    from pipelines.training.dataset import build_spine, temporal_split

    class NoCheckpoint:
        def save(self, payload: bytes) -> None:
            pass

        def load(self) -> bytes | None:
            return None

    events = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=60_000, seed=21))
    features = compute_window_features(events, usecase)
    joined = point_in_time_join(
        build_spine(events, usecase), features, "customer_id", "event_time", usecase.features.ttl_days
    )
    splits = temporal_split(joined, "event_time", 0.15, 0.15)
    vocab = {c: usecase.dataset.categorical_vocabulary(c) for c in usecase.categorical_features()}
    encoder = FeatureEncoder.fit(splits["train"], usecase.numeric_features(), vocab)
    bundle = ModelBundle.build(
        encoder, {"embedding_dim": 8, "hidden_sizes": [64, 32], "dropout": 0.1}, "churned_30d"
    )

    def tensors(frame: pd.DataFrame) -> TensorSplit:
        labels = torch.from_numpy(frame["churned_30d"].to_numpy("float32"))
        return TensorSplit(encoder.numeric_tensor(frame), encoder.categorical_tensor(frame), labels)

    settings = TrainingSettings(max_epochs=8, batch_size=512, learning_rate=3e-3, patience=3, seed=5)
    fit(
        bundle.network,
        tensors(splits["train"]),
        tensors(splits["valid"]),
        settings,
        torch.device("cpu"),
        NoCheckpoint(),
    )
    return bundle, splits["test"].head(3_000).reset_index(drop=True)


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    """The offline plan (Pulumi's mocks) of every cloud environment, once per session."""
    from infra.offline import plan_environment

    return {env: plan_environment(PACKAGE_ROOT / "environments", env) for env in CLOUD_ENVIRONMENTS}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port for the whole session; stopped at the end."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Points every adapter at the emulator (no real AWS endpoint is ever reached) and resets it."""
    import requests

    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    monkeypatch.setenv("MLOPS_AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield moto_endpoint


@pytest.fixture
def kms_key(aws: str) -> str:
    from tests.aws_emulator import aws_client

    return str(aws_client(aws, "kms").create_key(Description="test")["KeyMetadata"]["Arn"])


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole run (about 10 s once), shared by every flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
