"""The validation page: one page view serves every batch of a process, and no batch leaks into another."""

from __future__ import annotations

import re

from mlops.paths import PACKAGE_ROOT
from pipelines.datagen.examples import generate_example
from pipelines.usecase import load_usecase
from pipelines.validation.checks import evaluate
from pipelines.validation.docs import render_validation_page
from pipelines.validation.suite import expectations_for


def test_pages_rendered_one_after_another_each_show_their_own_batch() -> None:
    usecase = load_usecase(PACKAGE_ROOT / "usecases" / "churn.yaml")
    expectations = expectations_for(usecase.dataset)
    clean = generate_example(usecase, 2_000, 3)
    damaged = clean.copy()
    damaged[usecase.dataset.primary_key[0]] = None  # a key column with no values fails its checks
    passed, failed = evaluate(clean, expectations), evaluate(damaged, expectations)
    assert all(c.success for c in passed) and not all(c.success for c in failed)

    first = render_validation_page(usecase.dataset.name, "batch-one", expectations, passed)
    second = render_validation_page(usecase.dataset.name, "batch-two", expectations, failed)
    again = render_validation_page(usecase.dataset.name, "batch-one", expectations, passed)
    assert "batch-one" in first and "batch-two" not in first
    assert "batch-two" in second and "batch-one" not in second
    assert _unsuccessful(first) == 0 and _unsuccessful(second) == sum(not c.success for c in failed)
    assert len(again) == len(first)  # same results, same page (only its element ids are random)


def _unsuccessful(page: str) -> int:
    """The page's count of unsuccessful expectations, from its statistics table."""
    found = re.search(r"Unsuccessful Expectations</div></td><td[^>]*><div[^>]*>(\d+)<", page)
    assert found is not None, "the page has no statistics table"
    return int(found.group(1))
