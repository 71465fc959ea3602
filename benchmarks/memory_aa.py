"""Which memory figure can a memory verdict rest on? Spread and A/A false alarms of each, from real runs.

Give it A/A runs: A/B runs of one install against itself (``dlbench run --repeat 3 --python a=PY --python
b=PY``), each with two environments or more. For every memory reading (peak RSS, RSS rise, framework peak,
device peak) it prints

* the spread **between rounds**: the median over cases of the readings' coefficient of variation across the
  rounds of one side;
* the spread **between runs**: the median and the 90th percentile over cases of |log ratio| of a case's
  median reading in two separate runs;
* the **A/A false alarms** of the memory verdict of ``dlbench compare`` with its default policy, had it
  rested on that reading: within each run (``compare --within RUN a b``, rounds paired) and between runs
  (side ``a`` of one run against side ``a`` of the next, unpaired), as the share of compared cases called
  regressed or improved; and, for contrast, between runs on one reading per side (the thresholds alone, as
  the verdict was before it tested readings against their variation between rounds).

    python benchmarks/memory_aa.py results/aa1 results/aa2 results/aa3 results/aa4 results/aa5
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import replace
from pathlib import Path

from dlbench.record.results import MEMORY_METRICS, CaseResult
from dlbench.record.store import RunRecord, load_run
from dlbench.regress.verdict import UNCHANGED, Policy, memory_changes
from dlbench.regress.within import split_run


def readings(result: CaseResult, metric: str) -> list[float]:
    values = [m.readings()[metric] for m in result.round_memory()]
    return [float(v) for v in values if v is not None]


def sides(record: RunRecord) -> tuple[RunRecord, RunRecord]:
    names = [e.name for e in record.config.environments]
    if len(names) < 2:
        raise SystemExit(f"{record.run_id}: not an A/B run (give runs with two --python environments)")
    return split_run(record, names[0], names[1])


def alarms(base: RunRecord, cur: RunRecord, policy: Policy, rounds: bool = True) -> dict[str, tuple[int, int]]:
    """Per metric: (cases whose verdict on that reading is not unchanged, cases compared). Without
    ``rounds``: one reading per side (the first round's), thresholds alone, as before the round-level test."""
    found = {metric: [0, 0] for metric in MEMORY_METRICS}
    by_key = {r.case.key: r for r in base.results if r.ok}
    for result in cur.results:
        other = by_key.get(result.case.key)
        if other is None or not result.ok:
            continue
        for change in memory_changes(other.memory, result.memory, policy,
                                     other.round_memory() if rounds else (), result.round_memory() if rounds else ()):
            found[change.metric][1] += 1
            found[change.metric][0] += change.verdict != UNCHANGED
    return {metric: (bad, total) for metric, (bad, total) in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    records = [load_run(path) for path in args.runs]
    split = [sides(record) for record in records]
    policy = Policy()

    cv: dict[str, list[float]] = {m: [] for m in MEMORY_METRICS}
    for a, b in split:
        for side in (a, b):
            for result in side.results:
                for metric in MEMORY_METRICS:
                    values = readings(result, metric) if result.ok else []
                    if len(values) >= 2 and statistics.mean(values) > 0:
                        cv[metric].append(statistics.stdev(values) / statistics.mean(values))

    between: dict[str, list[float]] = {m: [] for m in MEMORY_METRICS}
    for (first, _), (second, _) in zip(split, split[1:], strict=False):
        later = {r.case.key: r for r in second.results if r.ok}
        for result in first.results:
            other = later.get(result.case.key)
            if other is None or not result.ok:
                continue
            for metric in MEMORY_METRICS:
                x, y = readings(result, metric), readings(other, metric)
                if x and y and statistics.median(x) > 0 and statistics.median(y) > 0:
                    between[metric].append(abs(math.log(statistics.median(y) / statistics.median(x))))

    within_alarms = [alarms(a, b, replace(policy, paired=True)) for a, b in split]
    pairs = list(zip(split, split[1:], strict=False))
    across_alarms = [alarms(first, second, policy) for (first, _), (second, _) in pairs]
    across_single = [alarms(first, second, policy, rounds=False) for (first, _), (second, _) in pairs]

    def rate(found: list[dict[str, tuple[int, int]]], metric: str) -> str:
        bad = sum(f[metric][0] for f in found)
        total = sum(f[metric][1] for f in found)
        return f"{bad} of {total} ({bad / total:.1%})" if total else "-"

    def q(values: list[float], share: float) -> str:
        if not values:
            return "-"
        ordered = sorted(values)
        return f"{math.expm1(ordered[min(len(ordered) - 1, int(share * len(ordered)))]):.1%}"

    print(f"{len(records)} A/A runs, {len(within_alarms)} pairs within runs, {len(across_alarms)} between runs")
    print("| reading | CV between rounds (median) | between runs: median / p90 | A/A within runs | A/A between runs "
          "| A/A between runs, one reading per side |")
    print("|---|---|---|---|---|---|")
    for metric in MEMORY_METRICS:
        rounds = f"{statistics.median(cv[metric]):.1%}" if cv[metric] else "-"
        print(f"| {metric} | {rounds} | {q(between[metric], 0.5)} / {q(between[metric], 0.9)} | "
              f"{rate(within_alarms, metric)} | {rate(across_alarms, metric)} | {rate(across_single, metric)} |")


if __name__ == "__main__":
    main()
