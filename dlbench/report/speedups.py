"""Speed-up tables: N threads against the fewest, GPU against the best CPU setting, variant against default.

These are the study's derived numbers ("Torch 1 -> 12 threads: 2.8x", "best GPU vs best CPU 11.8x",
"cuDNN vs cunn 8x"). Each speed-up is a ratio of medians, reference / other, so above 1 means faster than
the reference; both medians are kept in the CSV so that the ratio can be checked. Every comparison is
made at the batch size chosen for its workload's tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from dlbench.formatting import MISSING, fmt_ms, fmt_speedup
from dlbench.report.tables import BatchChoice, Cell, Table

SAME_WORK = ["workload", "phase", "batch_size", "pass", "framework", "variant", "precision"]


def timed_at_chosen(frame: pd.DataFrame, choices: Mapping[tuple[str, str], BatchChoice]) -> pd.DataFrame:
    """The timed (status ok) rows at each workload phase's chosen batch size."""
    if frame.empty:
        return frame
    chosen = [choices[(w, p)].batch_size if (w, p) in choices else -1
              for w, p in zip(frame["workload"], frame["phase"], strict=True)]
    return frame[(frame["status"] == "ok") & (frame["batch_size"] == pd.Series(chosen, index=frame.index))]


def _case_label(row: pd.Series) -> str:
    return f"{row['workload_label']} b{int(row['batch_size'])}"


def thread_speedups(timed: pd.DataFrame, many_runs: bool) -> Table | None:
    """Per run and series: the fewest-thread CPU median divided by each thread count's median."""
    cpu = timed[timed["device"] == "cpu"]
    data: list[dict[str, object]] = []
    for _, group in cpu.groupby(["run_order", *SAME_WORK], sort=False):
        if group["threads"].nunique() < 2:
            continue
        base = group.loc[group["threads"].idxmin()]
        for _, row in group.iterrows():
            data.append({
                "run": row["run"], "workload": row["workload"], "phase": row["phase"], "pass": row["pass"],
                "framework": row["framework"], "variant": row["variant"], "precision": row["precision"],
                "batch_size": row["batch_size"], "series": row["series"], "label": _case_label(row),
                "base_threads": int(base["threads"]), "base_median_ms": base["median_ms"],
                "threads": int(row["threads"]), "median_ms": row["median_ms"],
                "speedup": base["median_ms"] / row["median_ms"],
            })
    if not data:
        return None
    long = pd.DataFrame(data)
    counts = sorted(long["threads"].unique())
    rows: list[tuple[Cell, ...]] = []
    keys = ["run", "label", "series", "pass"]
    for _, group in long.groupby(keys, sort=False):
        first = group.iloc[0]
        by_threads = {int(r["threads"]): r for _, r in group.iterrows()}
        cells = [Cell(str(first["run"]))] if many_runs else []
        cells += [Cell(str(first["label"])), Cell(str(first["series"])), Cell(str(first["pass"])),
                  Cell(f"{fmt_ms(first['base_median_ms'])} ms at {int(first['base_threads'])}")]
        best = max(r["speedup"] for r in by_threads.values())
        for n in counts:
            r = by_threads.get(n)
            cells.append(Cell(MISSING, muted=True) if r is None else Cell(
                fmt_speedup(r["speedup"]), best=(r["speedup"] == best and len(by_threads) > 1),
                note=f"{fmt_ms(r['median_ms'])} ms with {n} thread(s)"))
        rows.append(tuple(cells))
    header = (("run",) if many_runs else ()) + ("workload", "framework [variant]", "pass", "reference")
    header += tuple(f"{n} thread{'s' if n != 1 else ''}" for n in counts)
    caption = ("CPU speed-up over the fewest threads measured (median / median; above 1 is faster). "
               "The largest speed-up of each row is highlighted.")
    return Table("speedup-threads", "Speed-up: N threads against the fewest", caption, header, tuple(rows),
                 long.drop(columns=["label", "series"]))


def gpu_speedups(timed: pd.DataFrame, many_runs: bool) -> Table | None:
    """Each GPU median against the fastest CPU setting of the same work, preferring the same host."""
    gpu, cpu = timed[timed["device"] != "cpu"], timed[timed["device"] == "cpu"]
    data: list[dict[str, object]] = []
    for _, row in gpu.iterrows():
        same = cpu
        for column in SAME_WORK:
            same = same[same[column] == row[column]]
        if same.empty:
            continue
        local = same[same["hostname"] == row["hostname"]]
        ref = (local if not local.empty else same).sort_values("median_ms").iloc[0]
        data.append({
            "run": row["run"], "workload": row["workload"], "phase": row["phase"], "pass": row["pass"],
            "framework": row["framework"], "variant": row["variant"], "precision": row["precision"],
            "batch_size": row["batch_size"], "gpu_median_ms": row["median_ms"], "cpu_run": ref["run"],
            "cpu_setting": ref["setting"], "cpu_median_ms": ref["median_ms"],
            "speedup": ref["median_ms"] / row["median_ms"],
            "label": _case_label(row), "series": row["series"],
        })
    if not data:
        return None
    long = pd.DataFrame(data)
    rows = tuple(
        tuple(([Cell(str(r["run"]))] if many_runs else []) + [
            Cell(str(r["label"])), Cell(str(r["series"])), Cell(str(r["pass"])),
            Cell(fmt_ms(r["gpu_median_ms"])),
            Cell(fmt_ms(r["cpu_median_ms"]), note=str(r["cpu_run"])), Cell(str(r["cpu_setting"])),
            Cell(fmt_speedup(r["speedup"]), best=r["speedup"] > 1)])
        for _, r in long.iterrows()
    )
    header = (("run",) if many_runs else ()) + (
        "workload", "framework [variant]", "pass", "GPU ms", "best CPU ms", "CPU setting", "speed-up")
    caption = ("GPU median against the fastest CPU setting of the same framework variant, workload, pass and "
               "batch size (taken from the same host when it has CPU results, else from any run).")
    return Table("speedup-gpu-cpu", "Speed-up: GPU against CPU", caption, header, rows,
                 long.drop(columns=["label", "series"]))


def variant_speedups(timed: pd.DataFrame, many_runs: bool) -> Table | None:
    """Each non-default variant against its framework's default variant in the same setting."""
    match = ["run", "device", "threads", "workload", "phase", "batch_size", "pass", "framework", "precision"]
    default_rows = timed[timed["default_variant"]]
    defaults = default_rows.set_index(match)["median_ms"]
    default_names = default_rows.groupby("framework")["variant"].first()
    data: list[dict[str, object]] = []
    for _, row in timed[~timed["default_variant"]].iterrows():
        key = tuple(row[c] for c in match)
        if key not in defaults.index:
            continue
        default_ms = float(defaults.loc[key])
        default_variant = default_names[row["framework"]]
        data.append({
            "run": row["run"], "setting": row["setting"], "workload": row["workload"], "phase": row["phase"],
            "pass": row["pass"], "framework": row["framework"], "precision": row["precision"],
            "batch_size": row["batch_size"], "default_variant": default_variant,
            "default_median_ms": default_ms, "variant": row["variant"], "median_ms": row["median_ms"],
            "speedup": default_ms / row["median_ms"], "label": _case_label(row),
        })
    if not data:
        return None
    long = pd.DataFrame(data)
    rows = tuple(
        tuple(([Cell(str(r["run"]))] if many_runs else []) + [
            Cell(str(r["setting"])), Cell(str(r["label"])), Cell(str(r["framework"])), Cell(str(r["pass"])),
            Cell(f"{r['default_variant']}: {fmt_ms(r['default_median_ms'])}"),
            Cell(f"{r['variant']}: {fmt_ms(r['median_ms'])}"),
            Cell(fmt_speedup(r["speedup"]), best=math.isfinite(r["speedup"]) and r["speedup"] > 1)])
        for _, r in long.iterrows()
    )
    header = (("run",) if many_runs else ()) + (
        "setting", "workload", "framework", "pass", "default ms", "variant ms", "speed-up")
    caption = "Default-variant median / variant median in the same setting: above 1, the variant is faster."
    return Table("speedup-variants", "Speed-up: variant against the default variant", caption, header, rows,
                 long.drop(columns=["label"]))


def precision_speedups(timed: pd.DataFrame, many_runs: bool) -> Table | None:
    """Each low precision against float32 of the same framework variant and setting ("bf16 vs float32"):
    float32 median / low-precision median, per framework, so that it shows which framework gains from
    mixed precision on this machine (and which loses, where the hardware only emulates it)."""
    match = ["run", "device", "threads", "workload", "phase", "batch_size", "pass", "framework", "variant"]
    full = timed[timed["precision"] == "float32"].set_index(match)["median_ms"]
    full = full[~full.index.duplicated()]
    data: list[dict[str, object]] = []
    for _, row in timed[timed["precision"] != "float32"].iterrows():
        key = tuple(row[c] for c in match)
        if key not in full.index:
            continue
        base_ms = float(full.loc[key])
        data.append({
            "run": row["run"], "setting": row["setting"], "workload": row["workload"], "phase": row["phase"],
            "pass": row["pass"], "framework": row["framework"], "variant": row["variant"],
            "precision": row["precision"], "batch_size": row["batch_size"], "float32_median_ms": base_ms,
            "median_ms": row["median_ms"], "speedup": base_ms / row["median_ms"], "label": _case_label(row),
        })
    if not data:
        return None
    long = pd.DataFrame(data).sort_values(["precision", "framework", "workload", "phase", "pass"], kind="stable")
    rows = tuple(
        tuple(([Cell(str(r["run"]))] if many_runs else []) + [
            Cell(f"{r['precision']} vs float32"), Cell(str(r["setting"])), Cell(str(r["label"])),
            Cell(f"{r['framework']} [{r['variant']}]"), Cell(str(r["pass"])), Cell(fmt_ms(r["float32_median_ms"])),
            Cell(fmt_ms(r["median_ms"])),
            Cell(fmt_speedup(r["speedup"]), best=math.isfinite(r["speedup"]) and r["speedup"] > 1)])
        for _, r in long.iterrows()
    )
    header = (("run",) if many_runs else ()) + (
        "precision", "setting", "workload", "framework [variant]", "pass", "float32 ms", "low-precision ms",
        "speed-up")
    caption = ("float32 median / low-precision median of the same framework variant, setting and batch size: "
               "above 1, mixed precision is faster. On CPUs without native bf16/fp16 arithmetic the casts "
               "and emulation usually make it slower.")
    return Table("speedup-precision", "Speed-up: low precision against float32", caption, header, rows,
                 long.drop(columns=["label"]))
