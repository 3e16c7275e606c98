"""The thread budget: the CPUs this process can actually get, never more, configurable."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import threads
from models.threads import ThreadSettingError, cgroup_cpu_limit, thread_budget


def test_cgroup_quota_is_read_from_v2_and_v1_files(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(v1) == 0.5
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    assert cgroup_cpu_limit(v1) is None
    assert cgroup_cpu_limit(tmp_path / "absent") is None


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 4)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda root=threads.CGROUP_ROOT: None)
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.delenv(threads.WORKERS_ENV, raising=False)


@pytest.mark.usefixtures("four_cpus")
def test_the_budget_leaves_out_what_other_work_keeps_busy_and_splits_among_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert thread_budget(load=0.2).threads == 4
    assert thread_budget(load=2.6).threads == 2  # two CPUs busy elsewhere
    assert thread_budget(load=9.0).threads == 1  # never zero
    assert thread_budget(workers=2, load=0.0).threads == 2
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda root=threads.CGROUP_ROOT: 1.5)
    assert thread_budget(load=0.0).threads == 2  # a 1.5-CPU quota, not the machine's 4


@pytest.mark.usefixtures("four_cpus")
def test_the_override_wins_and_a_bad_one_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    budget = thread_budget(load=4.0)
    assert budget.threads == 3 and budget.source == threads.THREADS_ENV
    monkeypatch.setenv(threads.THREADS_ENV, "many")
    with pytest.raises(
        ThreadSettingError, match="MLOPS_TORCH_THREADS: expected a whole number >= 1, got 'many'"
    ):
        thread_budget()


def test_torch_gets_the_budget_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(threads, "_configured", None)
    monkeypatch.setenv(threads.THREADS_ENV, "1")
    before = torch.get_num_threads()
    try:
        budget = threads.configure_threads()
        assert torch.get_num_threads() == 1 and "1 thread(s)" in budget.describe()
        monkeypatch.setenv(threads.THREADS_ENV, "2")
        assert threads.configure_threads() is budget  # applied once; later bundles do not reset it
    finally:
        torch.set_num_threads(before)
