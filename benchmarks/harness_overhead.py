"""Where the wall clock of ``dlbench run`` goes: inside cases, or in the harness around them.

Runs the real ``dlbench run`` command in this process (the same code path as the CLI) with a tracing executor,
then prints the breakdown:

* wall: the whole command, from argument parsing to the last file written (plus, apart, the import of the
  CLI itself);
* cases: the sum of the cases' ``duration_s`` (inputs, build, first call, warm-up and sampling);
* import: per worker, from spawn to "framework ready" (interpreter start, pinning, framework import);
* warm-up: from "ready" to the first case (the tiny throwaway case of every worker);
* in-case, untimed: from a case's start message to its result, minus its ``duration_s`` (what the worker does
  around the timed part: FLOP counting, release, garbage collection, the message itself);
* gaps: from one case's result to the next case's start message, in the same worker;
* teardown: from the last result to the worker's exit having been seen;
* outside workers: the rest (planning, environment capture, result writing after the last case, summary).

    python benchmarks/harness_overhead.py [--suite default] [--threads 1] [--framework torch,jax] [-- ...]

Arguments after ``--`` go to ``dlbench run`` unchanged. The issue's target: under 10% of the wall clock
outside cases for ``--suite default --threads 1`` on a quiet 2-core machine. Timings taken while other
processes compete for the cores overstate every part; say so when quoting them.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

t_import = time.perf_counter()
import dlbench.cli.run_cmd as run_cmd  # noqa: E402 - its import time is part of what we report
from dlbench.cli import main as cli_main  # noqa: E402
from dlbench.runner.isolate import LocalExecutor  # noqa: E402
from dlbench.spec import WorkerKey  # noqa: E402

IMPORT_S = time.perf_counter() - t_import


@dataclass
class Timeline:
    """Every traced event of every worker, in order: (event, time.monotonic())."""

    events: dict[WorkerKey, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))

    def __call__(self, event: str, worker: WorkerKey, at: float) -> None:
        self.events[worker].append((event, at))


def breakdown(timeline: Timeline, durations: dict[WorkerKey, float]) -> dict[str, float]:
    parts: dict[str, float] = defaultdict(float)
    for events in timeline.events.values():
        spawn = ready = last_result = last_start = None
        for event, at in events:
            if event == "spawn":
                spawn, ready, last_result, last_start = at, None, None, None
            elif event == "ready" and spawn is not None:
                ready = at
                parts["import"] += at - spawn
            elif event == "start":
                if last_result is not None:
                    parts["gaps"] += at - last_result
                elif ready is not None:
                    parts["warm-up"] += at - ready
                last_start = at
            elif event == "result":
                if last_start is not None:
                    parts["start to result"] += at - last_start
                last_result, last_start = at, None
            elif event == "exit":
                if last_result is not None:
                    parts["teardown"] += at - last_result
                elif ready is not None:
                    parts["warm-up"] += at - ready  # a worker that measured nothing
                if spawn is not None:
                    parts["in workers"] += at - spawn
                spawn = None
    parts["in-case, untimed"] = parts.pop("start to result", 0.0) - sum(durations.values())
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="default")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--framework", default=None, help="comma list (default: every installed framework)")
    parser.add_argument("--output", type=Path, default=None, help="run directory (default: a temporary one)")
    parser.add_argument("rest", nargs="*", help="more dlbench run arguments (after --)")
    args = parser.parse_args()

    output = args.output or Path(tempfile.mkdtemp(prefix="dlbench-overhead-")) / "run"
    argv = ["run", "--suite", args.suite, "--threads", args.threads, "--quiet", "--output", str(output), *args.rest]
    if args.framework:
        argv += ["--framework", args.framework]
    timeline = Timeline()
    run_cmd.LocalExecutor = functools.partial(LocalExecutor, trace=timeline)  # type: ignore[misc]
    started = time.perf_counter()
    try:
        cli_main(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            print(f"dlbench run exited with {exc.code}", file=sys.stderr)
    wall = time.perf_counter() - started

    record = json.loads((output / "run.json").read_text())
    durations: dict[WorkerKey, float] = defaultdict(float)
    for result in record["results"]:
        case = result["case"]
        durations[WorkerKey(case["framework"], case["device"], int(case["threads"]))] += result["duration_s"] or 0.0
    cases = sum(durations.values())
    parts = breakdown(timeline, durations)
    outside_workers = wall - parts.pop("in workers", 0.0)

    rows = [("wall (dlbench run)", wall), ("cases (sum of duration_s)", cases)]
    rows += [(name, parts.get(name, 0.0)) for name in ("import", "warm-up", "in-case, untimed", "gaps", "teardown")]
    rows += [("outside workers", outside_workers), ("import of the CLI (not in wall)", IMPORT_S)]
    print(f"{len(record['results'])} cases in {len(timeline.events)} worker group(s), run in {output}")
    for name, seconds in rows:
        share = f"{100 * seconds / wall:5.1f}%" if wall > 0 else ""
        print(f"  {name:<34} {seconds:8.2f} s  {share}")
    outside = wall - cases
    print(f"  {'outside cases (wall - cases)':<34} {outside:8.2f} s  {100 * outside / wall:5.1f}%")


if __name__ == "__main__":
    main()
