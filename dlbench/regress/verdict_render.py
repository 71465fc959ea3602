"""Render a :class:`~dlbench.regress.verdict.Comparison` for people (terminal, pull-request comment) and
for machines (JSON). Pure functions of the comparison: nothing here decides a verdict.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dlbench.display.terminal import make_console, plain, visible
from dlbench.formatting import fmt_change, fmt_mib, fmt_ms, fmt_ratio_change
from dlbench.regress.verdict import (
    FAILED,
    IMPROVED,
    MISSING,
    NEW,
    REGRESSED,
    UNCHANGED,
    VERDICTS,
    CaseComparison,
    Comparison,
    MemoryChange,
)
from dlbench.statistics.significance import (
    CI_OVERLAP,
    MODERATED_METHODS,
    RATIO_CONFIDENCE,
    ROUND_METHODS,
    ROUND_MODERATED_T,
    ROUND_PAIRED_MODERATED_T,
    ROUND_PAIRED_T,
    ROUND_SAMPLE_PAIRED_MODERATED_T,
    ROUND_SAMPLE_PAIRED_T,
    ROUND_T,
)

JSON_SCHEMA = "dlbench-compare/2"  # 2: time and memory verdicts apart (``verdict`` is time's)
MARKDOWN_ICONS = {REGRESSED: "🔴", FAILED: "💥", IMPROVED: "🟢", MISSING: "❔", NEW: "🆕", UNCHANGED: "⚪"}
STYLES = {REGRESSED: "bold red", FAILED: "red", IMPROVED: "green", MISSING: "yellow", NEW: "cyan",
          UNCHANGED: "dim"}
METRIC_LABELS = {"peak_rss": "peak RSS", "rss_rise": "RSS rise", "framework_peak": "framework peak",
                 "device_peak": "device peak"}


# ----- the comparison's own cells (numbers are written by dlbench.formatting) -----
def fmt_p(case: CaseComparison) -> str:
    timing = case.timing
    if timing is None:
        return ""
    if timing.method == CI_OVERLAP:
        return "CIs apart" if timing.significant else "CIs overlap"
    assert timing.p_value is not None
    return f"{timing.p_value:.2g}"


def fmt_interval(case: CaseComparison) -> str:
    timing = case.timing
    if timing is None:
        return ""
    return f"{fmt_ratio_change(timing.ratio_low)} … {fmt_ratio_change(timing.ratio_high)}"


def fmt_memory(change: MemoryChange) -> str:
    relative = "" if change.change is None else f" {fmt_change(change.change)}"
    label = METRIC_LABELS.get(change.metric, change.metric)
    rounds = "" if change.test is None or change.test.p_value is None else f", p {change.test.p_value:.2g}"
    return f"{label}{relative} ({fmt_mib(change.baseline)} → {fmt_mib(change.current)}{rounds})"


def memory_summary(case: CaseComparison) -> str:
    """The memory readings that changed beyond the thresholds, the judged one first (empty when none did);
    the others are shown for information, marked so."""
    judged = [fmt_memory(m) for m in case.memory if m.judged and m.verdict != UNCHANGED]
    others = [fmt_memory(m) for m in case.memory if not m.judged and m.verdict != UNCHANGED]
    return "; ".join([*judged, *(f"{text} (not judged)" for text in others)])


def _status_text(case: CaseComparison) -> str:
    if case.verdict == FAILED:
        return f"{case.current_status} (baseline: {case.baseline_status or 'absent'})"
    if case.verdict == MISSING:
        return f"absent from current run (baseline: {case.baseline_status})"
    return ""


def details(case: CaseComparison) -> str:
    """Memory changes, statuses and notes of a case, in one line."""
    parts = [memory_summary(case), _status_text(case), *case.notes]
    return "; ".join(p for p in parts if p)


def ordered(comparison: Comparison) -> list[CaseComparison]:
    """Worst first: by the worse of a case's time and memory verdicts, then by key."""
    rank = {verdict: i for i, verdict in enumerate(VERDICTS)}
    return sorted(comparison.cases, key=lambda c: (min(rank[c.verdict], rank.get(c.memory_verdict or "", 99)),
                                                   c.key))


def counts_line(comparison: Comparison) -> str:
    """``time: 1 regressed, 3 unchanged; memory: 4 unchanged`` (each verdict counted apart)."""
    time = ", ".join(f"{n} {verdict}" for verdict, n in comparison.counts().items() if n)
    memory = ", ".join(f"{n} {verdict}" for verdict, n in comparison.memory_counts().items() if n)
    return "; ".join(part for part in (f"time: {time}" if time else "", f"memory: {memory}" if memory else "")
                     if part)


def _test_names(comparison: Comparison) -> str:
    methods = {c.timing.method for c in comparison.cases if c.timing is not None}
    described = {
        ROUND_SAMPLE_PAIRED_MODERATED_T: "moderated paired t-test on the per-round medians of the log ratios "
                                         "of sample pairs taken in turn",
        ROUND_SAMPLE_PAIRED_T: "paired t-test on the per-round medians of the log ratios of sample pairs "
                               "taken in turn",
        ROUND_PAIRED_MODERATED_T: "moderated paired t-test on the per-round log ratios",
        ROUND_MODERATED_T: "moderated t-test on the log round medians",
        ROUND_PAIRED_T: "paired t-test on the per-round log ratios",
        ROUND_T: "t-test on the log round medians",
    }
    names = [text for method, text in described.items() if method in methods]
    if methods - ROUND_METHODS:
        names.append("Mann-Whitney U on the samples")
    prior = comparison.variance_prior
    if prior is not None and methods & MODERATED_METHODS:
        names.append(f"variance prior from {prior.cases} cases worth {prior.df:.1f} degrees of freedom")
    return ", ".join(names) or "Mann-Whitney U on the samples"


def _judged_names(comparison: Comparison) -> str:
    judged = sorted({m.metric for c in comparison.cases for m in c.memory if m.judged})
    return " / ".join(METRIC_LABELS.get(m, m) for m in judged) or "no figure in both runs"


def policy_line(comparison: Comparison) -> str:
    p = comparison.policy
    return (
        f"threshold {p.threshold:.1%} on the median time, significance level {p.alpha:g}"
        f" (two-sided {_test_names(comparison)}); memory judged on {_judged_names(comparison)}: threshold"
        f" {p.memory_threshold:.0%} and at least {fmt_mib(p.memory_floor_bytes)}, beyond the variation between"
        f" rounds where both runs have rounds; failing on {' and '.join(p.fail_on)}"
    )


NOTHING_COMPARED = "nothing compared: no case has a timing in both runs"


def headline(comparison: Comparison) -> str:
    found = {"time": len(comparison.with_verdict(REGRESSED)),
             "memory": len(comparison.with_memory_verdict(REGRESSED))}
    parts = [f"{n} {aspect} regression{'s' if n > 1 else ''}" for aspect, n in found.items() if n]
    if parts:
        quiet = [aspect for aspect, n in found.items() if n and aspect not in comparison.policy.fail_on]
        note = f" ({' and '.join(quiet)} not failing: --fail-on {','.join(comparison.policy.fail_on)})" if quiet else ""
        return ", ".join(parts) + note
    if comparison.nothing_compared:
        return NOTHING_COMPARED
    return "no regression"


def _timing_cells(case: CaseComparison) -> tuple[str, str, str]:
    timing = case.timing
    if timing is None:
        return "", "", ""
    return (fmt_ms(timing.baseline.median, unit=True), fmt_ms(timing.current.median, unit=True),
            fmt_ratio_change(timing.ratio))


# ----- terminal -----
def table_renderable(comparison: Comparison) -> RenderableType:
    """A rich renderable: headline, warnings, then one row per case, worst verdicts first."""
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for name in ("time", "memory", "case", "baseline", "current", "change"):
        table.add_column(name, justify="right" if name in ("baseline", "current", "change") else "left")
    table.add_column(f"{RATIO_CONFIDENCE:.0%} CI")
    table.add_column("p")
    table.add_column("details", overflow="fold")
    for case in ordered(comparison):
        base, cur, change = _timing_cells(case)
        cells = (case.key, base, cur, change, fmt_interval(case), fmt_p(case), details(case))
        # plain, not str: run-supplied text such as "[x]" in an error must not be read as rich markup
        memory = case.memory_verdict or ""
        table.add_row(Text(case.verdict, style=STYLES[case.verdict]), Text(memory, style=STYLES.get(memory, "")),
                      *(plain(c) for c in cells))
    head = plain(
        f"dlbench compare: {headline(comparison)} ({counts_line(comparison) or 'no cases'})\n"
        f"baseline {comparison.baseline_id} → current {comparison.current_id}; {policy_line(comparison)}"
    )
    warnings = [plain(f"warning: {w}", "yellow") for w in comparison.warnings]
    caveats = [plain(f"note: {c}", "yellow") for c in comparison.caveats()]
    return Group(head, *warnings, *caveats, table)


def render_text(comparison: Comparison, width: int = 160) -> str:
    """The terminal table as plain text (for files and tests)."""
    buffer = io.StringIO()
    make_console(width=width, file=buffer, color_system=None).print(table_renderable(comparison))
    return buffer.getvalue()


# ----- markdown (pull-request comment) -----
# Markdown punctuation that could open a link, an image, emphasis or a code span (escaped with "\").
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]~])")
# What GitHub turns into a link or a notification by itself: @mentions, #references, URLs, www. names.
# A zero-width space after "@", "#", a scheme's ":" and "www" keeps the text readable and inert. A ":" counts
# as a scheme's also when backslashes stand before the "/" (``A:\//``): a reader's eye skips them.
_AUTOLINKS = re.compile(r"([@#]|(?<=[A-Za-z]):(?=\\*/)|(?i:www)(?=\.))")
ZERO_WIDTH_SPACE = "\u200b"


def md_cell(text: str) -> str:
    """Text from a run (case notes, error texts, run ids) as inert markdown for a table cell or a line:
    no line breaks, no pipes, no raw HTML, and nothing GitHub would render as a link, an image, emphasis or
    an @mention, however the text was crafted. What a reader sees is the text itself."""
    flat = " ".join(visible(text).split())
    escaped = _MD_PUNCTUATION.sub(r"\\\1", html.escape(flat, quote=False))
    return _AUTOLINKS.sub(lambda m: m.group(0) + ZERO_WIDTH_SPACE, escaped).replace("|", "\\|")


def md_code(text: str) -> str:
    """Text as an inline code span (case keys, run ids): never a link or a mention, shown verbatim."""
    flat = " ".join(visible(text).split()).replace("`", "'")
    return f"`{flat}`".replace("|", "\\|")


def _md_row(case: CaseComparison) -> str:
    base, cur, change = _timing_cells(case)
    memory = case.memory_verdict
    cells = [
        f"{MARKDOWN_ICONS[case.verdict]} {case.verdict}", f"{MARKDOWN_ICONS[memory]} {memory}" if memory else "",
        base, cur, change, fmt_interval(case), fmt_p(case), details(case),
    ]
    key = md_code(case.key)
    return "| " + " | ".join([md_cell(cells[0]), md_cell(cells[1]), key, *(md_cell(c) for c in cells[2:])]) + " |"


def _md_table(cases: list[CaseComparison]) -> list[str]:
    header = f"| time | memory | case | baseline | current | change | {RATIO_CONFIDENCE:.0%} CI | p | details |"
    return [header, "|---|---|---|--:|--:|--:|---|---|---|", *(_md_row(c) for c in cases)]


def render_markdown(comparison: Comparison) -> str:
    """A pull-request comment: headline, warnings, the cases that need attention, all cases folded."""
    icon = "❌" if comparison.failing() or comparison.nothing_compared else "✅"
    lines = [
        f"### {icon} dlbench: {headline(comparison)}",
        "",
        f"Baseline {md_code(comparison.baseline_id)} → current {md_code(comparison.current_id)}: "
        f"{md_cell(counts_line(comparison) or 'no cases')}.",
        f"<sub>{md_cell(policy_line(comparison))}. Median times (cases measured in rounds: the geometric "
        f"mean of the round medians); the change interval is a {RATIO_CONFIDENCE:.0%} interval of the "
        f"ratio of medians.</sub>",
        "",
    ]
    for warning in comparison.warnings:
        lines.append(f"> ⚠️ **Environment differs:** {md_cell(warning)}")
    for caveat in comparison.caveats():
        lines.append(f"> ℹ️ **One round:** {md_cell(caveat)}")
    if comparison.warnings or comparison.caveats():
        lines.append("")
    notable = [c for c in ordered(comparison) if c.verdict != UNCHANGED or c.memory_verdict not in (None, UNCHANGED)]
    if notable:
        lines += [*_md_table(notable), ""]
    lines += [
        f"<details><summary>All {len(comparison.cases)} cases</summary>",
        "",
        *_md_table(ordered(comparison)),
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


# ----- JSON -----
def _finite(value: float | None) -> float | None:
    """JSON has no infinity or NaN; such values become null."""
    return value if value is not None and math.isfinite(value) else None


def _timing_json(case: CaseComparison) -> dict[str, Any] | None:
    t = case.timing
    if t is None:
        return None
    return {
        "verdict": case.timing_verdict, "baseline_median_ms": t.baseline.median,
        "current_median_ms": t.current.median, "baseline_n": t.baseline.n, "current_n": t.current.n,
        "baseline_rounds": t.baseline.rounds, "current_rounds": t.current.rounds,
        "baseline_round_cv": _finite(t.baseline.round_cv), "current_round_cv": _finite(t.current.round_cv),
        "ratio": _finite(t.ratio), "ratio_low": _finite(t.ratio_low), "ratio_high": _finite(t.ratio_high),
        "ratio_confidence": RATIO_CONFIDENCE, "p_value": t.p_value, "method": t.method,
        "significant": t.significant,
    }


def case_json(case: CaseComparison) -> dict[str, Any]:
    return {
        "key": case.key, "case": case.case.to_dict(), "verdict": case.verdict,
        "memory_verdict": case.memory_verdict,
        "baseline_status": case.baseline_status, "current_status": case.current_status,
        "timing": _timing_json(case),
        "memory": [
            {"metric": m.metric, "baseline_bytes": m.baseline, "current_bytes": m.current,
             "change": _finite(m.change), "verdict": m.verdict, "judged": m.judged,
             "method": None if m.test is None else m.test.method,
             "p_value": None if m.test is None else m.test.p_value,
             "rounds": None if m.test is None else list(m.test.rounds)}
            for m in case.memory
        ],
        "notes": list(case.notes),
    }


def render_json(comparison: Comparison, strict: bool = False, allow_empty: bool = False) -> str:
    p = comparison.policy
    data = {
        "schema": JSON_SCHEMA, "baseline": comparison.baseline_id, "current": comparison.current_id,
        "policy": {"threshold": p.threshold, "alpha": p.alpha, "memory_threshold": p.memory_threshold,
                   "memory_floor_bytes": p.memory_floor_bytes, "strict": strict, "allow_empty": allow_empty,
                   "normalize": "control" if p.normalize_control else "none", "round_test": p.round_test,
                   "paired": p.paired, "fail_on": list(p.fail_on)},
        "variance_prior": None if comparison.variance_prior is None else {
            "df": _finite(comparison.variance_prior.df), "variance": comparison.variance_prior.variance,
            "cases": comparison.variance_prior.cases},
        "exit_code": comparison.exit_code(strict, allow_empty), "nothing_compared": comparison.nothing_compared,
        "counts": comparison.counts(), "memory_counts": comparison.memory_counts(),
        "control_shift": _finite(comparison.control_shift),
        "memory_control_shift": _finite(comparison.memory_control_shift),
        "warnings": list(comparison.warnings), "caveats": comparison.caveats(),
        "cases": [case_json(c) for c in ordered(comparison)],
    }
    return json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
