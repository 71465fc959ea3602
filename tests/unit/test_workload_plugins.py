"""The workload plugin door (``dlbench.workloads`` entry points), on the fake adapter: the built-ins come through
it, a plugin's workload is listed, planned, built and measured like them, and each fault of a plugin (a wrong
declared parameter count, a batch generator of the wrong shape, an entry point that is no plugin or does not
import, a builder that raises or builds the wrong count) is that workload's one-line error while the others go on.
"""

from __future__ import annotations

import csv
import functools
import importlib.metadata
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlbench.errors import SuiteError
from dlbench.workloads import WorkloadPluginError, registry
from dlbench.workloads.builtin import BUILTIN_ORDER
from tests import workload_plugins
from tests.conftest import ROOT, run_cli


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The built-ins plus the test plugins, in this process (the registry's entry-point reader replaced)."""
    real = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=registry.GROUP)}
    entries = {**real, **workload_plugins.ENTRY_POINTS}
    monkeypatch.setattr(registry, "_entry_points", functools.cache(lambda: entries))
    registry.reset()
    yield
    monkeypatch.undo()
    registry.reset()


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which every process (the CLI and its workers) sees the test plugins."""
    path = workload_plugins.install(tmp_path / "site")
    return {"PYTHONPATH": os.pathsep.join([str(path), str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "DLBENCH_FAKE_SCALE": "0.01"}


def test_builtins_come_through_the_entry_points() -> None:
    assert registry.workload_names()[:5] == BUILTIN_ORDER


def test_an_install_without_the_entry_points_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout whose install predates the entry-point group (its metadata lists no workload at all): the
    error says to reinstall, instead of listing no known workloads."""
    monkeypatch.setattr(registry, "_entry_points", functools.cache(lambda: {}))
    registry.reset()
    try:
        with pytest.raises(SuiteError, match="no workload is registered.*reinstall dlbench"):
            registry.get_workload("lenet")
    finally:
        monkeypatch.undo()
        registry.reset()
    assert registry.get_workload("lenet").name == "lenet"
    assert set(registry._entry_points()) >= set(BUILTIN_ORDER)
    assert registry.broken_workloads() == {}
    assert registry.get_plugin("lenet").builders["jax"].endswith(":lenet_network")


def test_good_plugin_is_registered_after_the_builtins(registered: None) -> None:
    names = registry.workload_names()
    assert names[:5] == BUILTIN_ORDER and "tiny" in names[5:]
    assert registry.get_workload("tiny").total_params() == workload_plugins.PARAMS
    batch = registry.make_batch("tiny", 3, seed=1)
    assert batch.x.shape == (3, 4) and batch.y.shape == (3,)
    assert (registry.make_batch("tiny", 3, seed=1).x == batch.x).all()  # seeded


@pytest.mark.parametrize(("name", "says"), [
    ("wrong_count", "declares 16 parameters, its parameter table holds 15"),
    ("bad_shape", "inputs of shape (2, 5), the definition says (2, 4)"),
    ("not_a_plugin", "is a int, not a WorkloadPlugin"),
    ("missing", "failed to load: ModuleNotFoundError"),
])
def test_each_fault_is_one_line_and_the_others_load(registered: None, name: str, says: str) -> None:
    broken = registry.broken_workloads()
    assert set(broken) == set(workload_plugins.BROKEN)
    assert says in broken[name] and "\n" not in broken[name] and name in broken[name]
    assert name not in registry.all_workload_names()
    with pytest.raises(WorkloadPluginError, match=name):
        registry.get_workload(name)
    assert "tiny" in registry.workload_names() and "lenet" in registry.workload_names()


def test_unknown_workload_is_not_called_broken(registered: None) -> None:
    with pytest.raises(Exception, match="unknown workload 'nope'"):
        registry.get_workload("nope")


def test_list_shows_plugins_and_broken_ones_in_one_line(plugin_env: dict[str, str]) -> None:
    proc = run_cli("list", env=plugin_env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split("│")[1].strip() == "tiny" for line in lines if "│" in line)
    for name in workload_plugins.BROKEN:
        assert any(f"│ {name} " in line and "broken" in line for line in lines), name


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_run_measures_a_plugin_and_a_raising_builder_fails_its_cases_only(
        plugin_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("run", "--framework", "fake", "--workload", "tiny,raising,wrong_built,lenet", "--device", "cpu",
                   "--batch-size", "2", "--max-time", "0.05", "--output", str(out), "--quiet", env=plugin_env)
    assert "Traceback" not in proc.stdout + proc.stderr
    rows = {(r["workload"], r["pass"]): r for r in _rows(out)}
    assert {w for w, _ in rows} == {"tiny", "raising", "wrong_built", "lenet"}
    for pass_ in ("forward", "gradient"):
        assert rows["tiny", pass_]["status"] == "ok" and rows["lenet", pass_]["status"] == "ok"
        assert rows["tiny", pass_]["params"] == str(workload_plugins.PARAMS)
        raising = rows["raising", pass_]
        assert raising["status"] == "failed" and "the plugin's builder is broken" in raising["error"]
        assert "\n" not in raising["error"] and "Traceback" not in raising["error"]
        wrong = rows["wrong_built", pass_]
        assert wrong["status"] == "failed" and "14 trainable parameters, the canonical count is 15" in wrong["error"]


def test_run_naming_a_broken_plugin_is_a_one_line_error(plugin_env: dict[str, str], tmp_path: Path) -> None:
    proc = run_cli("run", "--framework", "fake", "--workload", "bad_shape", "--device", "cpu",
                   "--output", str(tmp_path / "run"), "--quiet", env=plugin_env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "bad_shape" in proc.stderr and "(2, 5)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_suite_of_every_workload_skips_broken_plugins_with_a_note(
        plugin_env: dict[str, str], tmp_path: Path) -> None:
    suite = tmp_path / "all.toml"
    suite.write_text('name = "all"\npasses = ["forward"]\n[devices.cpu]\nthreads = [1]\n'
                     'batch_sizes = { lenet = [2], "*" = [1] }\n'
                     '[measure]\nmax_time_s = 0.05\nmin_samples = 3\nwarmup_s = 0.01\n')
    out = tmp_path / "run"
    proc = run_cli("run", "--suite", str(suite), "--framework", "fake", "--device", "cpu", "--output", str(out),
                   env=plugin_env)
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    rows = _rows(out)
    assert {r["workload"] for r in rows} >= {*BUILTIN_ORDER, "tiny", "raising", "wrong_built"}
    assert not {r["workload"] for r in rows} & set(workload_plugins.BROKEN)
    assert {r["batch_size"] for r in rows if r["workload"] == "lenet"} == {"2"}
    assert {r["batch_size"] for r in rows if r["workload"] == "tiny"} == {"1"}
    for name in workload_plugins.BROKEN:
        assert f"workload plugin skipped: workload plugin {name!r}" in " ".join(text.split()) or \
            f"workload plugin skipped: workload {name!r}" in " ".join(text.split()), (name, text[-3000:])


def test_a_framework_the_plugin_does_not_build_for_is_unavailable(registered: None) -> None:
    """Every adapter asks :func:`plugin_builder`: a plugin with a fake builder only is ``unavailable`` (with the
    framework's name) on any other framework, and the builder it names is what the fake adapter gets."""
    from dlbench.frameworks.base import CaseUnavailable, plugin_builder
    from dlbench.workloads import get_workload

    tiny = get_workload("tiny")
    with pytest.raises(CaseUnavailable, match="workload 'tiny' has no PyTorch implementation"):
        plugin_builder(tiny, "torch", "PyTorch")
    assert plugin_builder(tiny, "fake", "fake") is workload_plugins.fake_build
