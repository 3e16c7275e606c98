"""Artifact store on S3, every object encrypted with the environment's KMS key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.adapters.aws.session import client


class S3ArtifactStore:
    """ArtifactStore on `s3://bucket/prefix/`; keys are relative POSIX paths."""

    def __init__(self, bucket: str, prefix: str, kms_key_id: str, s3: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.kms_key_id = kms_key_id
        self.s3 = s3 or client("s3")

    def _key(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"artifact key {key!r} escapes the store root")
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def put_bytes(self, key: str, data: bytes) -> str:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self.kms_key_id,
        )
        return self.uri(key)

    def put_file(self, key: str, path: Path) -> str:
        return self.put_bytes(key, path.read_bytes())

    def put_tree(self, prefix: str, directory: Path) -> str:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            self.put_file(f"{prefix}/{path.relative_to(directory).as_posix()}", path)
        return self.uri(prefix)

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.s3.exceptions.NoSuchKey as exc:
            raise KeyError(f"artifact {key!r} not found in s3://{self.bucket}/{self.prefix}") from exc
        body: bytes = response["Body"].read()
        return body

    def exists(self, key: str) -> bool:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self._key(key), MaxKeys=1)
        return any(item["Key"] == self._key(key) for item in listed.get("Contents", []))
