"""Shared fixtures: run the real ``dlbench`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def network_phases() -> int:
    """(network, phase) pairs of every registered network: the built-ins' 8, plus those of the installed workload
    plugins (the example ResNet in the project's venv), which a suite without a ``workloads`` key runs too."""
    from dlbench.workloads import networks

    return sum(len(w.phase_names) for w in networks().values())


def smoke_cases() -> int:
    """Cases of the smoke suite on one framework, variant and device: every network phase, both passes."""
    return 2 * network_phases()


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("DLBENCH_FAKE_FAULTS", None)
    full_env.update(env or {})
    full_env.setdefault("COLUMNS", "200")
    return subprocess.run([sys.executable, "-m", "dlbench", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=timeout, check=False)


def wait_for_results(out: Path, count: int, timeout: float = 240) -> None:
    """Wait until the run writing ``out`` has stored ``count`` results (a run to interrupt part-way). The
    limit is for a loaded machine (other work on every core); a run that stalls still fails here."""
    from dlbench.errors import StoreError
    from dlbench.record.journal import JournalWarning
    from dlbench.record.store import load_run

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:  # the record as every reader sees it: run.json and the journal that continues it
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", JournalWarning)  # a line being written as we read
                if len(load_run(out).results) >= count:
                    return
        except (OSError, StoreError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} results after {timeout} s")


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


def assert_one_line_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    """Bad input: exit 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines, "no error message"
    assert fragment.lower() in proc.stderr.lower(), proc.stderr
    assert len(lines) <= 3, proc.stderr  # click's usage errors add a 'Usage:' and a 'Try' line
