"""Render a :class:`VerifyReport`: rich tables for people, a JSON document for machines.

Renderers only format what the session decided; they compute nothing and never run a framework.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from dlbench.display.terminal import plain
from dlbench.formatting import MISSING, fmt_count
from dlbench.verify.biases import RANDOM
from dlbench.verify.collect import ImplResult
from dlbench.verify.compare import FAMILIES, TensorError, summarize_families
from dlbench.verify.judge import FAIL, PASS, PairComparison, TargetReport, VerifyReport

SCHEMA = "dlbench.verify/1"
VERDICT_STYLE = {PASS: "bold green", FAIL: "bold red", "error": "bold yellow"}


def _sci(value: float | None) -> str:
    if value is None:
        return MISSING
    if math.isinf(value):
        return "inf"
    return f"{value:.1e}"


def errors_table(report: TargetReport) -> Table:
    """One row per pair: the largest absolute and relative error of each tensor family."""
    tol = report.tolerance
    table = Table(
        title=f"{report.target.label}: largest errors per pair (tolerance, max rel error: output "
        f"{tol.output:.0e}, loss {tol.loss:.0e}, gradients {tol.gradient:.0e})",
        title_justify="left",
        show_edge=False,
    )
    table.add_column("implementation")
    table.add_column("against")
    for family in FAMILIES:
        table.add_column(f"{family} abs", justify="right")
        table.add_column(f"{family} rel", justify="right")
    table.add_column("worst gradient")
    table.add_column("ok")
    for pair in report.comparisons:
        table.add_row(*_pair_cells(pair))
    if any(e.explained for pair in report.comparisons for e in pair.errors):
        table.caption = (
            "* over the tolerance as such, but within the reference's elementwise float32 allowance "
            "(near-cancelling sums, near-ties)"
        )
        table.caption_justify = "left"
    return table


def _pair_cells(pair: PairComparison) -> list[str | Text]:
    families = summarize_families(pair.errors)
    cells: list[str | Text] = [plain(pair.a), plain(pair.b)]
    for family in FAMILIES:
        summary = families.get(family)
        if summary is None:
            cells += ["-", "-"]
            continue
        style = "red" if not summary.ok else ("yellow" if summary.explained else "")
        rel = _sci(summary.max_rel) + ("*" if summary.explained and summary.ok else "")
        cells += [Text(_sci(summary.max_abs), style), Text(rel, style)]
    gradient = families.get("gradient")
    cells.append(plain(gradient.worst) if gradient else "-")
    cells.append(Text("yes", "green") if pair.ok else Text("NO", "bold red"))
    return cells


def counts_table(report: TargetReport) -> Table:
    """Parameter counts, MACs and FLOPs: canonical, counted by the reference, reported by each framework."""
    flops = report.canonical_flops
    table = Table(
        title=f"{report.target.label}: counts (batch {report.batch_size})",
        title_justify="left",
        show_edge=False,
    )
    for name in ("source", "status", "trainable params", "MACs/sample", "forward FLOPs", "gradient FLOPs"):
        table.add_column(name, justify="left" if name in ("source", "status") else "right")
    table.add_row(
        "docs/workloads.md",
        "",
        fmt_count(report.canonical_params),
        fmt_count(report.canonical_macs),
        fmt_count(flops["forward"]),
        fmt_count(flops["gradient"]) + " (3x est.)",
    )
    ref_status = "error" if report.reference_error else "ok"
    table.add_row(
        "numpy/reference",
        ref_status,
        fmt_count(report.reference_params),
        fmt_count(report.reference_macs),
        "-",
        "-",
    )
    for impl in report.implementations:
        table.add_row(*_impl_cells(impl, report.canonical_params))
    return table


def _impl_cells(impl: ImplResult, canonical_params: int) -> list[str | Text]:
    params_ok = impl.trainable_params in (None, canonical_params)
    status_style = {"ok": "green", "error": "red"}.get(impl.status, "yellow")
    label = f"{impl.label} {impl.version}".strip()
    return [
        plain(label),
        plain(impl.status, status_style),
        Text(fmt_count(impl.trainable_params), "" if params_ok else "bold red"),
        "-",
        fmt_count(impl.framework_flops.get("forward")),
        fmt_count(impl.framework_flops.get("gradient")),
    ]


def target_renderable(report: TargetReport) -> RenderableType:
    verdict = Text(f"{report.target.label}: {report.verdict.upper()}", VERDICT_STYLE[report.verdict])
    parts: list[RenderableType] = [verdict, counts_table(report)]
    if report.comparisons:
        parts.append(errors_table(report))
    parts += [plain(f"  x {line}", "red") for line in report.problems]
    parts += [plain(f"  - {line}", "dim") for line in report.notes]
    parts.append(Text(""))
    return Group(*parts)


def describe_weights(report: VerifyReport) -> str:
    """What every implementation was fed: the line above the tables, so that a pasted table says it too."""
    if report.biases == RANDOM:
        weights = "canonical initial weights, biases replaced by seeded random values (--biases random)"
    else:
        weights = "canonical initial weights, zero biases (--biases canonical)"
    return f"verify: {weights}; batch {report.batch_size}, seed {report.seed}, {report.device}, dropout off"


def print_table(report: VerifyReport, console: Console) -> None:
    console.print(Text(describe_weights(report), "bold"))
    console.print(Text(""))
    for target in report.targets:
        console.print(target_renderable(target))
    for note in report.notes:
        console.print(plain(f"- {note}", "dim"))
    failed = [t.target.label for t in report.targets if t.verdict != PASS]
    summary = (
        f"verify: {report.verdict.upper()} ({len(report.targets)} workload phases, batch {report.batch_size}"
    )
    summary += f", seed {report.seed}, {report.device}, {report.biases} biases, {report.precision})"
    if failed:
        summary += f"; not passing: {', '.join(failed)}"
    console.print(Text(summary, VERDICT_STYLE[report.verdict]))


# ----------------------------------------------------------------------------------------------------------
# JSON


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: a tensor that could not be compared has ``null`` errors and a ``problem``."""
    return None if value is None or not math.isfinite(value) else value


def _tensor_dict(error: TensorError) -> dict[str, Any]:
    return {
        "tensor": error.tensor,
        "family": error.family,
        "max_abs": _finite(error.max_abs),
        "max_rel": _finite(error.max_rel),
        "excess_rel": _finite(error.excess_rel),
        "tolerance": error.tolerance,
        "explained_by_allowance": error.explained,
        "ok": error.ok,
        "problem": error.problem or None,
    }


def _impl_dict(impl: ImplResult) -> dict[str, Any]:
    return {
        "framework": impl.framework,
        "variant": impl.variant,
        "conv": impl.conv,
        "traits": impl.traits,
        "version": impl.version,
        "status": impl.status,
        "error": impl.error or None,
        "trainable_params": impl.trainable_params,
        "framework_flops": impl.framework_flops,
        "affinity": list(impl.affinity),
    }


def target_dict(report: TargetReport) -> dict[str, Any]:
    tol = report.tolerance
    return {
        "workload": report.target.workload,
        "phase": report.target.phase,
        "verdict": report.verdict,
        "tolerance": {"output": tol.output, "loss": tol.loss, "gradient": tol.gradient, "why": tol.why},
        "counts": {
            "canonical_params": report.canonical_params,
            "reference_params": report.reference_params,
            "canonical_macs_per_sample": report.canonical_macs,
            "reference_macs_per_sample": report.reference_macs,
            "canonical_flops": report.canonical_flops,
        },
        "near_ties": None
        if report.near_ties is None
        else {"found": report.near_ties[0], "analysed": report.near_ties[1]},
        "implementations": [_impl_dict(i) for i in report.implementations],
        "comparisons": [
            {"a": p.a, "b": p.b, "ok": p.ok, "tensors": [_tensor_dict(e) for e in p.errors]}
            for p in report.comparisons
        ],
        "problems": list(report.problems),
        "notes": list(report.notes),
    }


def to_json(report: VerifyReport) -> str:
    document = {
        "schema": SCHEMA,
        "verdict": report.verdict,
        "batch_size": report.batch_size,
        "seed": report.seed,
        "device": report.device,
        "biases": report.biases,
        "precision": report.precision,
        "notes": list(report.notes),
        "targets": [target_dict(t) for t in report.targets],
    }
    return json.dumps(document, indent=2, allow_nan=False)
