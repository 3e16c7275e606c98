"""The lake in AWS: Iceberg tables on S3 registered in the environment's Glue database.

Raw tables live in the raw bucket, everything else in the curated bucket; both buckets encrypt by
default with the environment's KMS key (provisioned by `infra/`), so every data, manifest and
metadata file is SSE-KMS. Lake tables `zone.name` become `<glue_database>.zone__name`.
"""

from __future__ import annotations

import os

from mlops.contract import AwsLake
from pipelines.adapters.iceberg_lake import IcebergLake


def glue_identifier(database: str, table: str) -> str:
    return f"{database}.{table.replace('.', '__')}"


def table_location(lake: AwsLake, table: str) -> str:
    zone, name = table.split(".", 1)
    bucket = lake.raw_bucket if zone == "raw" else lake.curated_bucket
    return f"s3://{bucket}/iceberg/{zone}/{name}"


def catalog_properties(region: str | None) -> dict[str, str]:
    """pyiceberg's Glue catalog and S3 FileIO settings; $MLOPS_AWS_ENDPOINT_URL points both at an emulator."""
    properties: dict[str, str] = {}
    if region:
        properties.update({"glue.region": region, "s3.region": region})
    endpoint = os.environ.get("MLOPS_AWS_ENDPOINT_URL")
    if endpoint:
        properties.update({"glue.endpoint": endpoint, "s3.endpoint": endpoint})
        for prefix in ("glue", "s3"):
            if os.environ.get("AWS_ACCESS_KEY_ID"):
                properties[f"{prefix}.access-key-id"] = os.environ["AWS_ACCESS_KEY_ID"]
                properties[f"{prefix}.secret-access-key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    return properties


def glue_lake(lake: AwsLake, region: str | None) -> IcebergLake:
    """LakePort over the Glue catalog and S3."""
    from pyiceberg.catalog.glue import GlueCatalog

    catalog = GlueCatalog("glue", **catalog_properties(region))
    return IcebergLake(
        catalog,
        identifier=lambda table: glue_identifier(lake.glue_database, table),
        location=lambda table: table_location(lake, table),
    )
