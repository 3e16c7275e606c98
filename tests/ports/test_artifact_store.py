"""The artifact store port: the same assertions against the local and the S3 adapter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.adapters.aws.artifacts import S3ArtifactStore
from pipelines.adapters.local.artifacts import LocalArtifactStore
from pipelines.ports import ArtifactStore

from .conftest import aws_client, make_bucket


@pytest.fixture(params=["local", "aws"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    endpoint = request.getfixturevalue("aws")
    key = request.getfixturevalue("kms_key")
    return S3ArtifactStore(make_bucket(endpoint, "artifacts"), "platform", key)


def test_round_trip_and_overwrite(store: ArtifactStore) -> None:
    uri = store.put_bytes("runs/a/result.json", b"{}")
    assert uri.endswith("runs/a/result.json")
    assert store.get_bytes("runs/a/result.json") == b"{}"
    store.put_bytes("runs/a/result.json", b'{"v": 2}')
    assert store.get_bytes("runs/a/result.json") == b'{"v": 2}'


def test_exists_is_about_objects_not_prefixes(store: ArtifactStore) -> None:
    store.put_bytes("runs/a/model/weights.pt", b"w")
    assert store.exists("runs/a/model/weights.pt")
    assert not store.exists("runs/a/model")
    assert not store.exists("runs/a/model/weights")
    assert not store.exists("missing.json")


def test_missing_key_and_escaping_key(store: ArtifactStore) -> None:
    with pytest.raises(KeyError, match="not found"):
        store.get_bytes("nope.json")
    with pytest.raises(ValueError, match="escapes"):
        store.put_bytes("../outside", b"x")


def test_put_tree_keeps_relative_paths(store: ArtifactStore, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "static").mkdir(parents=True)
    (site / "index.html").write_text("<html/>")
    (site / "static" / "style.css").write_text("body{}")
    root = store.put_tree("validation/b1", site)
    assert root.endswith("validation/b1")
    assert store.get_bytes("validation/b1/static/style.css") == b"body{}"
    assert store.uri("validation/b1/index.html").startswith(("file://", "s3://"))


def test_s3_objects_are_encrypted_with_the_environment_key(aws: str, kms_key: str) -> None:
    store = S3ArtifactStore(make_bucket(aws, "encrypted"), "", kms_key)
    store.put_bytes("x.bin", b"1")
    head = aws_client(aws, "s3").head_object(Bucket="encrypted", Key="x.bin")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == kms_key
    assert store.uri("x.bin") == "s3://encrypted/x.bin"


def test_files_stream_in_and_out(store: ArtifactStore, tmp_path: Path) -> None:
    """A file past S3's multipart threshold (8 MB) goes in and comes out byte for byte."""
    payload = os.urandom(9 * 1024 * 1024 + 17)
    source = tmp_path / "train.parquet"
    source.write_bytes(payload)
    store.put_file("runs/a/data/train.parquet", source)
    copy = store.get_file("runs/a/data/train.parquet", tmp_path / "copy.parquet")
    assert copy == tmp_path / "copy.parquet" and copy.read_bytes() == payload
    store.put_bytes("runs/a/data/train.parquet", b"newer")  # the copy keeps what it was given
    assert copy.read_bytes() == payload
    assert store.get_file("runs/a/data/train.parquet", copy).read_bytes() == b"newer"
    with pytest.raises(KeyError, match="not found"):
        store.get_file("runs/a/data/missing.parquet", tmp_path / "missing.parquet")


def test_s3_files_are_encrypted_with_the_environment_key(aws: str, kms_key: str, tmp_path: Path) -> None:
    store = S3ArtifactStore(make_bucket(aws, "encrypted-files"), "", kms_key)
    (tmp_path / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    store.put_file("big.bin", tmp_path / "big.bin")
    head = aws_client(aws, "s3").head_object(Bucket="encrypted-files", Key="big.bin")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == kms_key
