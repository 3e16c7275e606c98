"""Lower layers never import higher ones: models/ is torch (and numpy, pandas) only."""

from __future__ import annotations

import ast
from pathlib import Path

from mlops.paths import PACKAGE_ROOT

HIGHER = ("mlops", "pipelines", "infra", "policies", "prefect", "pulumi", "pulumi_aws", "boto3", "mlflow")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_models_import_nothing_above_torch() -> None:
    offenders = {
        path.name: sorted(_imports(path) & set(HIGHER))
        for path in sorted((PACKAGE_ROOT / "models").glob("*.py"))
    }
    assert not {name: found for name, found in offenders.items() if found}
