"""Artifact store on S3, every object encrypted with the environment's KMS key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

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

    def _encryption(self) -> dict[str, str]:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}

    def put_bytes(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **self._encryption())
        return self.uri(key)

    def put_file(self, key: str, path: Path) -> str:
        # boto3's managed transfer: multipart past 8 MB, the file streamed rather than read whole
        self.s3.upload_file(str(path), self.bucket, self._key(key), ExtraArgs=self._encryption())
        return self.uri(key)

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

    def get_file(self, key: str, path: Path) -> Path:
        try:
            self.s3.download_file(self.bucket, self._key(key), str(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise KeyError(f"artifact {key!r} not found in s3://{self.bucket}/{self.prefix}") from exc
            raise
        return path

    def exists(self, key: str) -> bool:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self._key(key), MaxKeys=1)
        return any(item["Key"] == self._key(key) for item in listed.get("Contents", []))
