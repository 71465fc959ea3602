"""How long a Ctrl-C takes to end a run, and how long an A/B run takes to its first results.

Runs ``dlbench run`` on the fake adapter (so that the numbers are the harness's, not a framework's) in three
situations, each ``--tries`` times, and prints the median and the worst:

* ``plain``: a one-environment run whose LSTM forward case hangs (``DLBENCH_FAKE_FAULTS``); SIGINT once the
  twelve cases before it are stored, i.e. while a worker sits in the hanging case;
* ``plain-mid``: the same run without the hang, SIGINT at a random instant of the sweep;
* ``ab``: an A/B run taking turns whose head side hangs in the gradient pass; SIGINT once both forward
  results are stored. Also timed: start to those first two results.

Run it on a quiet machine, then with other work on every core (``--load`` starts one busy loop per core for
the duration, the way a loaded CI runner looks), and compare.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = ("--framework", "fake", "--device", "cpu", "--quiet", "--timeout", "120")


def stored(out: Path) -> int:
    try:
        return len(json.loads((out / "run.json").read_text())["results"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_for(out: Path, count: int, proc: subprocess.Popen[bytes], limit_s: float = 600) -> float:
    """Seconds until ``count`` results are stored (the run must still be running)."""
    started = time.monotonic()
    while stored(out) < count:
        if proc.poll() is not None:
            raise RuntimeError(f"the run ended ({proc.returncode}) before {count} results")
        if time.monotonic() - started > limit_s:
            raise RuntimeError(f"fewer than {count} results after {limit_s} s")
        time.sleep(0.01)
    return time.monotonic() - started


def interrupt(proc: subprocess.Popen[bytes]) -> float:
    """SIGINT, then seconds until the process exited (it must exit 130)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=600)
    elapsed = time.monotonic() - sent
    if code != 130:
        raise RuntimeError(f"exit {code} after SIGINT, expected 130")
    return elapsed


def head_python(directory: Path) -> str:
    """An interpreter whose workers hang in the LeNet gradient pass (the head side of the A/B run)."""
    path = directory / "head-python"
    path.write_text(f"#!/bin/sh\nDLBENCH_FAKE_FAULTS='hang:lenet/-/gradient/*' exec \"{sys.executable}\" \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def one_try(kind: str, directory: Path) -> tuple[float, float | None]:
    out = directory / "run"
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DLBENCH_FAKE_FAULTS", None)
    args = [sys.executable, "-m", "dlbench", "run", *FAST, "--output", str(out)]
    if kind in ("plain", "plain-mid"):
        args += ["--suite", "smoke"]
        if kind == "plain":
            env["DLBENCH_FAKE_FAULTS"] = "hang:lstm/-/forward/*"
    else:
        args += ["--suite", "smoke", "--workload", "lenet", "--python", f"base={sys.executable}",
                 "--python", f"head={head_python(directory)}"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = None
        if kind == "plain":
            wait_for(out, 12, proc)
            time.sleep(0.2)
        elif kind == "plain-mid":
            wait_for(out, 1, proc)
            time.sleep(random.uniform(0.0, 1.5))
        else:
            first = wait_for(out, 2, proc)
            time.sleep(0.2)
        return interrupt(proc), first
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextmanager
def busy_loops(on: bool) -> Iterator[None]:
    loops = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(os.cpu_count() or 1)] if on else []
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def describe(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, worst {max(values):.2f} s (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--kinds", default="plain,plain-mid,ab")
    parser.add_argument("--load", action="store_true", help="one busy loop per core while measuring")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    with busy_loops(args.load):
        for kind in args.kinds.split(","):
            exits: list[float] = []
            firsts: list[float] = []
            for _ in range(args.tries):
                with tempfile.TemporaryDirectory(prefix="dlbench-sigint-") as tmp:
                    elapsed, first = one_try(kind, Path(tmp))
                exits.append(elapsed)
                if first is not None:
                    firsts.append(first)
            print(f"{kind:10s} {'loaded' if args.load else 'quiet'}: SIGINT to exit {describe(exits)}", flush=True)
            if firsts:
                print(f"{kind:10s} {'loaded' if args.load else 'quiet'}: start to first 2 results {describe(firsts)}",
                      flush=True)


if __name__ == "__main__":
    main()
