"""kill -9 at random moments of a 1,000-case fake sweep, resumed after every kill: after each kill the files
are readable and hold every case stored before it exactly once, unchanged; the last resume finishes the run
with every planned case exactly once.

The moments fall everywhere a run spends time: the interpreter's start, the compaction of a resume (snapshot,
CSV and journal replaced one after the other), the worker's start and the cases, whose results are appended
a line at a time. The fake adapter with a minimal measurement makes a case a few milliseconds, so the whole
test takes about a minute on a loaded 2-core machine.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import time
import warnings
from pathlib import Path

import msgspec
import pytest

from dlbench.record.journal import JournalWarning
from dlbench.record.store import CSV_FILE, JOURNAL_FILE, RUN_FILE, load_run
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

KILLS = 24
SCALE = "20"  # a case of a few milliseconds: the 1,000 outlast the kills, the test stays short
BATCHES = 125  # x 4 autoencoder phases x 2 passes = 1,000 cases
SUITE = f"""\
name = "kill-sweep"
workloads = ["autoencoder"]
passes = ["forward", "gradient"]
frameworks = ["fake"]

[devices.cpu]
threads = [1]
batch_sizes = [{", ".join(str(b) for b in range(1, BATCHES + 1))}]

[measure]
warmup_s = 0.0
min_warmup = 1
min_block_s = 0.0
min_samples = 3
max_samples = 3
min_time_s = 0.0
max_time_s = 1.0
timeout_s = 120
"""


def start(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "COLUMNS": "200", "DLBENCH_FAKE_SCALE": SCALE}
    env.pop("DLBENCH_FAKE_FAULTS", None)
    return subprocess.Popen([sys.executable, "-m", "dlbench", "run", *args, "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stored(out: Path) -> dict[tuple[str, str], bytes]:
    """Every stored result by (environment, key), as JSON; checks that the files are readable and that no
    case is there twice."""
    json.loads((out / RUN_FILE).read_bytes())  # the snapshot is whole JSON on its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JournalWarning)  # a kill inside a write: its line is dropped
        record = load_run(out)
    with open(out / CSV_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(row["key"] and row["status"] for row in rows[:-1])  # only a kill's last row may be cut short
    found = {(r.environment, r.case.key): msgspec.json.encode(r) for r in record.results}
    assert len(found) == len(record.results), "a case is stored twice"
    return found


def test_kill_9_at_random_moments_loses_nothing_and_stores_each_case_once(tmp_path: Path) -> None:
    seed = int(os.environ.get("DLBENCH_KILL_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    suite = tmp_path / "kill.toml"
    suite.write_text(SUITE)
    out = tmp_path / "run"
    proc = start("--suite", str(suite), "--output", str(out))
    deadline = time.time() + 120
    while not (out / JOURNAL_FILE).exists():  # the fresh run's files exist: from here on, resume finishes it
        assert proc.poll() is None and time.time() < deadline, "the run did not start"
        time.sleep(0.02)
    seen: dict[tuple[str, str], bytes] = {}
    counts = []
    for kill in range(KILLS):
        time.sleep(rng.uniform(0.05, 1.2))
        proc.kill()
        proc.wait()
        now = stored(out)
        lost = [key for key in seen if key not in now]
        changed = [key for key in seen if key in now and now[key] != seen[key]]
        assert not lost and not changed, f"seed {seed}, kill {kill + 1}: lost {lost[:3]}, changed {changed[:3]}"
        seen = now
        counts.append(len(now))
        proc = start("--resume", str(out))
    assert proc.wait(timeout=600) == 0, f"seed {seed}: the last resume failed"
    assert sum(count < BATCHES * 8 for count in counts) >= 20, f"seed {seed}: the kills came too late {counts}"
    record = load_run(out)
    planned = {c.key for c in record.config.cases}
    keys = [r.case.key for r in record.results]
    assert len(keys) == len(set(keys)) == len(planned) == BATCHES * 8 and set(keys) == planned
    assert record.status == "complete" and all(r.ok for r in record.results)
    assert all(now == msgspec.json.encode(r) for r in record.results
               if (now := seen.get((r.environment, r.case.key))) is not None)  # measured once, kept unchanged
    with open(out / CSV_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["key"] for row in rows) == sorted(planned)  # compacted: one row per case
    assert (out / JOURNAL_FILE).read_text().count("\n") == 1  # the finish folded the journal in
    print(f"seed {seed}: results after each kill {counts}")
