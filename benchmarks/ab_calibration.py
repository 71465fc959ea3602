"""False alarms and power of dlbench's verdicts, measured end to end with a noisy neighbour.

Runs ``--pairs`` trials. Each trial is either one interleaved A/B run (``--layout ab``: ``dlbench run
--python base=PY --python head=PY2 --repeat R`` then ``dlbench compare --within RUN base head``; the two
sides take turns sample by sample unless the run arguments say ``--interleave rounds``) or two
separate runs compared with each other (``--layout pairs``: ``dlbench run`` twice, then ``dlbench compare``).
While they run, a noisy neighbour works on the core the workers are not pinned to: a busy loop and a
memory-bandwidth hog (a large array copied over and over), as on a shared CI runner.

* A/A (default): both sides run the same interpreter; every ``regressed`` verdict is a false alarm.
* ``--slowdown 0.10``: the head side runs through a wrapper that sets ``DLBENCH_FAKE_SLOW`` so that the
  fake adapter's cases matching ``--affected`` (an fnmatch pattern on the case key; default: the gradient
  passes, half of the cases) cost exactly 10% more there, their per-call overhead included; the other
  cases are unchanged. ``regressed`` verdicts among the affected cases are then the power, among the
  unaffected ones false alarms. This knob only affects ``--framework fake``; real frameworks give A/A
  figures only.

Counts of verdicts over all case comparisons are printed at the end, split into affected and unaffected
cases. The issue's target, at the default policy: at most 1% regressed in A/A; with a 10% slow-down at
least 90% of the affected cases regressed and at most 1% of the unaffected ones.

    python benchmarks/ab_calibration.py --pairs 5 -- --suite default --threads 1 --repeat 3
    python benchmarks/ab_calibration.py --pairs 5 --slowdown 0.10        # the fake smoke suite, R = 3
"""

from __future__ import annotations

import argparse
import collections
import fnmatch
import json
import multiprocessing
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def busy_loop(core: int) -> None:
    os.sched_setaffinity(0, {core})
    while True:
        pass


def bandwidth_hog(core: int) -> None:
    import numpy as np

    os.sched_setaffinity(0, {core})
    source = np.ones(16 * 2**20, dtype=np.float32)  # 64 MiB, far beyond the caches
    target = np.empty_like(source)
    while True:
        np.copyto(target, source)


def neighbour_core() -> int | None:
    """The core the workers do not use (they take the lowest cores first)."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[-1] if len(cores) > 1 else None


def slow_setting(affected: str, slowdown: float) -> str:
    """The ``DLBENCH_FAKE_SLOW`` value that makes the ``affected`` cases ``1 + slowdown`` times slower."""
    return f"{affected}={1 + slowdown!r}"


def slow_wrapper(directory: Path, python: str, affected: str, slowdown: float) -> str:
    """An executable that runs ``python`` with the affected fake cases slowed down."""
    path = directory / "python-slow"
    path.write_text(f"#!/bin/sh\nDLBENCH_FAKE_SLOW='{slow_setting(affected, slowdown)}' exec \"{python}\" \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def dlbench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dlbench", *args], capture_output=True, text=True, env=env)


def verdicts(compare_args: list[str], affected: str) -> list[tuple[str, str]]:
    """``(case key, timing verdict)`` of every timed case. Prints the round-level noise compare saw (the
    fitted prior's standard deviation of the log round medians, or of the per-round log ratios in an A/B
    run), which says how large a change the run could have found, and every surprise: an affected case
    (matching ``affected``) not found, or another case flagged."""
    proc = dlbench("compare", *compare_args, "--format", "json")
    if proc.returncode not in (0, 1):
        raise SystemExit(f"dlbench compare failed: {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    prior = data.get("variance_prior")
    if prior:
        print(f"  round-level noise: {prior['variance'] ** 0.5:.1%} (prior of {prior['cases']} cases, "
              f"{prior['df']:.1f} df)", flush=True)
    found = [(c["key"], c["timing"]["verdict"]) for c in data["cases"] if c["timing"]]
    for case in data["cases"]:  # what a verdict other than "unchanged" rested on, and what was missed
        timing = case["timing"]
        if timing and (timing["verdict"] != "unchanged") != fnmatch.fnmatchcase(case["key"], affected):
            print(f"    {timing['verdict']:>9} {case['key']}: ratio {timing['ratio']:.3f} "
                  f"({timing['ratio_low']:.3f} … {timing['ratio_high']:.3f}), p = {timing['p_value']:.2g}",
                  flush=True)
    return found


def trial(work: Path, number: int, layout: str, head_python: str, affected: str, slowdown: float,
          run_args: list[str]) -> list[tuple[str, str]]:
    if layout == "ab":
        out = work / f"ab-{number}"
        proc = dlbench("run", *run_args, "--quiet", "--python", f"base={sys.executable}",
                       "--python", f"head={head_python}", "--output", str(out))
        if proc.returncode not in (0, 1):
            raise SystemExit(f"dlbench run failed: {proc.stderr.strip()}")
        return verdicts(["--within", str(out), "base", "head"], affected)
    sides = []
    for side in ("base", "head"):
        out = work / f"{side}-{number}"
        env = dict(os.environ)
        if side == "head" and slowdown:
            env["DLBENCH_FAKE_SLOW"] = slow_setting(affected, slowdown)
        proc = dlbench("run", *run_args, "--quiet", "--output", str(out), env=env)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"dlbench run failed: {proc.stderr.strip()}")
        sides.append(str(out))
    return verdicts(sides, affected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--layout", choices=("ab", "pairs"), default="ab")
    parser.add_argument("--slowdown", type=float, default=0.0, help="injected slow-down of the head side")
    parser.add_argument("--affected", default="*/gradient/*",
                        help="fnmatch pattern on the case key of the cases slowed down (default: gradient passes)")
    parser.add_argument("--no-neighbour", action="store_true", help="run without the noisy neighbour")
    parser.add_argument("run_args", nargs="*", help="dlbench run arguments (after --)")
    args = parser.parse_args()
    run_args = args.run_args or ["--suite", "smoke", "--framework", "fake", "--threads", "1", "--repeat", "3"]
    neighbours = []
    core = neighbour_core()
    if core is not None and not args.no_neighbour:
        neighbours = [multiprocessing.Process(target=f, args=(core,), daemon=True) for f in (busy_loop, bandwidth_hog)]
        for process in neighbours:
            process.start()
    counts: dict[bool, collections.Counter[str]] = {True: collections.Counter(), False: collections.Counter()}
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="dlbench-ab-") as tmp:
            work = Path(tmp)
            head = (slow_wrapper(work, sys.executable, args.affected, args.slowdown) if args.slowdown
                    else sys.executable)
            for number in range(args.pairs):
                affected = args.affected if args.slowdown else ""  # A/A: no case is affected
                found = trial(work, number, args.layout, head, affected, args.slowdown, run_args)
                for key, verdict in found:
                    counts[bool(args.slowdown) and fnmatch.fnmatchcase(key, args.affected)][verdict] += 1
                print(f"trial {number + 1}/{args.pairs}: {dict(collections.Counter(v for _, v in found))}",
                      flush=True)
    finally:
        for process in neighbours:
            process.terminate()
    what = (f"{args.slowdown:.0%} slow-down in head of the cases {args.affected}" if args.slowdown
            else "A/A (identical sides)")
    print(f"\n{what}, layout {args.layout}, neighbour on core {core if neighbours else 'none'}, "
          f"run args: {' '.join(run_args)}; {time.monotonic() - started:.0f} s")
    for affected, label in ((True, "affected cases"), (False, "unaffected cases")):
        total = sum(counts[affected].values())
        if not total:
            continue
        print(f"{label}:")
        for verdict in ("regressed", "improved", "unchanged"):
            n = counts[affected].get(verdict, 0)
            print(f"  {verdict:>9}: {n:>4} of {total} case comparisons ({n / total:.1%})")


if __name__ == "__main__":
    main()
