"""Where the wall clock of ``dlbench run`` goes: inside cases, or in the harness around them.

Runs the real ``dlbench run`` command in this process (the same code path as the CLI) with a tracing executor,
then prints the breakdown:

* wall: the whole command, from argument parsing to the last file written (plus, apart, the import of the
  CLI itself);
* cases: the sum of the cases' ``duration_s`` (inputs, build, first call, warm-up and sampling);
* import: per worker, from spawn to "framework ready" (interpreter start, pinning, framework import);
* warm-up: from "ready" to the first case (the tiny throwaway case of every worker), or, for a worker started
  ahead of its turn, to its "waiting" at the gate;
* waiting ahead: from "waiting" to the gate's opening, while the workers before it measure (not harness time:
  their cases run meanwhile; its CPU time shows that a waiting worker runs nothing);
* start message to result: per case, as the parent sees it (``duration_s`` plus the release of the case);
* gaps: from one case's result to the next case's start message, in the same worker;
* teardown: from the last result to the worker's exit having been seen;
* outside workers: the rest (planning, environment capture, result writing after the last case, summary).

Beside each part's wall time, the worker's CPU time in it: on a busy machine wall times stretch, while a
one-thread worker's CPU time stays close to what a quiet machine's wall time would be, so the last line
estimates the quiet share outside cases from the workers' CPU times (the parent's own time not included).

    python benchmarks/harness_overhead.py [--suite default] [--threads 1] [--framework torch,jax] [--in-turn] [-- ...]

Workers started ahead of their turn import side by side, so their import and warm-up times overlap and add up
to more than the wall time they cost; ``--in-turn`` starts every worker in its turn instead (the way before
start-ahead), for a before/after in one sitting.

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
import psutil  # noqa: E402

import dlbench.cli.run_cmd  # noqa: E402, F401 - its import time is part of what we report
import dlbench.runner.schedule as schedule  # noqa: E402
import dlbench.runner.session as session  # noqa: E402
from dlbench.cases.spec import WorkerKey  # noqa: E402
from dlbench.cli import main as cli_main  # noqa: E402
from dlbench.runner.executor import LocalExecutor  # noqa: E402

IMPORT_S = time.perf_counter() - t_import


def worker_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) the worker has used so far; None once it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


@dataclass
class Timeline:
    """Every traced event of every worker, in order: (event, time.monotonic(), the worker's CPU seconds)."""

    events: dict[WorkerKey, list[tuple[str, float, float | None]]] = field(
        default_factory=lambda: defaultdict(list))

    def __call__(self, event: str, worker: WorkerKey, at: float, pid: int) -> None:
        self.events[worker].append((event, at, 0.0 if event == "spawn" else worker_cpu(pid)))


PARTS = ("import", "warm-up", "waiting ahead", "in cases", "gaps", "teardown", "in workers")


def breakdown(timeline: Timeline) -> tuple[dict[str, float], dict[str, float]]:
    """Wall seconds and worker CPU seconds per part (CPU: where the worker was alive at both ends)."""
    wall: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)

    def add(part: str, start: tuple[float, float | None], end: tuple[float, float | None]) -> None:
        wall[part] += end[0] - start[0]
        if start[1] is not None and end[1] is not None:
            cpu[part] += end[1] - start[1]

    for events in timeline.events.values():
        spawn = ready = last_result = last_start = waiting = gone = None
        for event, at, used in events:
            point = (at, used)
            if event == "spawn":
                spawn, ready, last_result, last_start, waiting, gone = point, None, None, None, None, None
            elif event == "ready" and spawn is not None:
                ready = point
                add("import", spawn, point)
            elif event == "waiting" and ready is not None:
                waiting = point
                add("warm-up", ready, point)
            elif event == "go" and waiting is not None:
                gone = point
                add("waiting ahead", waiting, point)
            elif event == "start":
                if last_result is not None:
                    add("gaps", last_result, point)
                elif gone is not None:
                    add("gaps", gone, point)
                elif ready is not None:
                    add("warm-up", ready, point)
                last_start = point
            elif event == "result":
                if last_start is not None:
                    add("in cases", last_start, point)
                last_result, last_start = point, None
            elif event == "exit":
                if last_result is not None:
                    add("teardown", last_result, point)
                elif ready is not None and waiting is None:
                    add("warm-up", ready, point)  # a worker that measured nothing
                if spawn is not None:
                    add("in workers", spawn, point)
                spawn = None
    return wall, cpu


def union(timeline: Timeline) -> float:
    """Wall seconds during which at least one worker was alive (workers started ahead overlap)."""
    spans = []
    for events in timeline.events.values():
        spawn = None
        for event, at, _ in events:
            if event == "spawn":
                spawn = at
            elif event == "exit" and spawn is not None:
                spans.append((spawn, at))
                spawn = None
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="default")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--framework", default=None, help="comma list (default: every installed framework)")
    parser.add_argument("--output", type=Path, default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--in-turn", action="store_true", help="start every worker in its turn (no start-ahead)")
    parser.add_argument("rest", nargs="*", help="more dlbench run arguments (after --)")
    args = parser.parse_args()
    if args.in_turn:
        schedule.ahead_limit = lambda: 1  # type: ignore[assignment]

    output = args.output or Path(tempfile.mkdtemp(prefix="dlbench-overhead-")) / "run"
    argv = ["run", "--suite", args.suite, "--threads", args.threads, "--quiet", "--output", str(output), *args.rest]
    if args.framework:
        argv += ["--framework", args.framework]
    timeline = Timeline()
    session.LocalExecutor = functools.partial(LocalExecutor, trace=timeline)  # type: ignore[misc]
    started = time.perf_counter()
    try:
        cli_main(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            print(f"dlbench run exited with {exc.code}", file=sys.stderr)
    wall = time.perf_counter() - started

    record = json.loads((output / "run.json").read_text())
    cases = sum(result["duration_s"] or 0.0 for result in record["results"])
    wall_parts, cpu_parts = breakdown(timeline)
    outside_workers = wall - union(timeline)

    started = "each in its turn" if args.in_turn else "ahead of their turn where they can"
    print(f"{len(record['results'])} cases in {len(timeline.events)} worker group(s), started {started}, "
          f"run in {output}")
    print(f"  {'':<36} {'wall s':>8} {'share':>6}   {'worker CPU s':>12}")

    def line(name: str, seconds: float, cpu: float | None = None) -> None:
        cpu_text = f"{cpu:12.2f}" if cpu is not None else ""
        print(f"  {name:<36} {seconds:8.2f} {100 * seconds / wall:5.1f}%   {cpu_text}")

    line("wall (dlbench run)", wall)
    line("cases (sum of duration_s)", cases)
    line("  start message to result, per case", wall_parts["in cases"], cpu_parts["in cases"])
    for name in ("import", "warm-up", "waiting ahead", "gaps", "teardown"):
        line(f"  {name}", wall_parts[name], cpu_parts.get(name))
    line("outside workers (parent alone)", outside_workers)
    line("outside cases (wall - cases)", wall - cases)
    print(f"  import of the CLI (before the wall above): {IMPORT_S:.2f} s")
    outside_cpu = sum(cpu_parts.get(name, 0.0) for name in ("import", "warm-up", "gaps"))
    estimate = outside_cpu / (outside_cpu + cpu_parts["in cases"]) if cpu_parts["in cases"] else float("nan")
    print(f"  worker CPU outside cases / all worker CPU (estimates the quiet share, parent alone not counted): "
          f"{100 * estimate:.1f}%")


if __name__ == "__main__":
    main()
