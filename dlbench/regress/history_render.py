"""Present a :class:`~dlbench.regress.history.History`: a terminal table, a self-contained HTML page (charts
inline as base64 SVG data URIs: one file to attach to a CI run or publish), and JSON for other tools.

Every text that comes from a run (case keys, run ids, commits, paths, error lines) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from rich.table import Table
from rich.text import Text

from dlbench.display.terminal import plain
from dlbench.formatting import fmt_change, fmt_ms
from dlbench.regress.history import CaseHistory, History
from dlbench.regress.history_plot import case_chart_svg
from dlbench.regress.steps import GAMMA

JSON_SCHEMA = "dlbench-history/1"
METHOD = (
    "Change points: penalised piecewise-constant fit of the per-run medians (log scale, absolute deviations,"
    f" penalty {GAMMA:g} x noise x ln(runs)); a level lasts at least two runs."
)


def step_lines(case: CaseHistory) -> list[str]:
    return [
        f"{point.run.label}: {fmt_ms(step.before, unit=True)} → {fmt_ms(step.after, unit=True)}"
        f" ({fmt_change(step.change)})"
        for step, point in case.steps()
    ]


def _latest(case: CaseHistory) -> str:
    timed = case.timed
    return fmt_ms(timed[-1].summary.median, unit=True) if timed and timed[-1].summary else ""


def _first(case: CaseHistory) -> str:
    timed = case.timed
    return fmt_ms(timed[0].summary.median, unit=True) if timed and timed[0].summary else ""


def _runs_cell(case: CaseHistory) -> str:
    return f"{len(case.timed)}/{len(case.points)}"


def header_line(history: History) -> str:
    return f"{len(history.runs)} runs under {history.root}, ordered by {history.ordering}"


# ----- terminal -----
def history_table(history: History) -> Table:
    table = Table(title=plain(f"dlbench history: {header_line(history)}"), header_style="bold", show_edge=False)
    table.add_column("case")
    table.add_column("timed/runs", justify="right")
    table.add_column("first", justify="right")
    table.add_column("latest", justify="right")
    table.add_column("change points", overflow="fold")
    for case in history.cases:
        steps = step_lines(case)
        cells = (case.key, _runs_cell(case), _first(case), _latest(case))
        changes = plain("\n".join(steps)) if steps else Text("none", style="dim")
        table.add_row(*(plain(c) for c in cells), changes)
    return table


# ----- HTML -----
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td.num { text-align: right; }
.up { color: #b00; } .down { color: #070; } .muted { color: #777; }
section { margin-bottom: 2.5em; } img { max-width: 100%; }
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _steps_html(case: CaseHistory) -> str:
    items = []
    for step, point in case.steps():
        css = "up" if step.change > 0 else "down"
        items.append(
            f'<span class="{css}">{_esc(point.run.label)} ({_esc(point.run.run_id)}): '
            f"{_esc(fmt_ms(step.before, unit=True))} → {_esc(fmt_ms(step.after, unit=True))}"
            f" ({fmt_change(step.change)})</span>"
        )
    return "<br>".join(items) or '<span class="muted">none</span>'


def _summary_rows(history: History) -> str:
    rows = []
    for i, case in enumerate(history.cases):
        rows.append(
            f'<tr><td><a href="#case-{i}"><code>{_esc(case.key)}</code></a></td>'
            f'<td class="num">{_runs_cell(case)}</td><td class="num">{_esc(_first(case))}</td>'
            f'<td class="num">{_esc(_latest(case))}</td><td>{_steps_html(case)}</td></tr>'
        )
    return "\n".join(rows)


def _chart(case: CaseHistory) -> str:
    if not case.timed:
        return '<p class="muted">No run has a timing for this case.</p>'
    data = base64.b64encode(case_chart_svg(case).encode("utf-8")).decode("ascii")
    return f'<img alt="median time per run of {_esc(case.key)}" src="data:image/svg+xml;base64,{data}">'


def _case_section(index: int, case: CaseHistory) -> str:
    failed = [p for p in case.points if p.summary is None]
    failures = ""
    if failed:
        listed = ", ".join(f"{_esc(p.run.label)} ({_esc(p.status)})" for p in failed)
        failures = f'<p class="muted">No timing in: {listed}</p>'
    return (
        f'<section id="case-{index}"><h3><code>{_esc(case.key)}</code></h3>\n{_chart(case)}\n'
        f"<p>Change points: {_steps_html(case)}</p>{failures}</section>"
    )


def history_html(history: History) -> str:
    skipped = ""
    if history.skipped:
        items = "".join(f"<li>{_esc(line)}</li>" for line in history.skipped)
        skipped = f"<p>Skipped (unreadable):</p><ul>{items}</ul>"
    sections = "\n".join(_case_section(i, case) for i, case in enumerate(history.cases))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dlbench history</title>
<style>{STYLE}</style></head>
<body>
<h1>dlbench history</h1>
<p>{_esc(header_line(history))}. {_esc(METHOD)}</p>
{skipped}
<h2>Cases</h2>
<table><tr><th>case</th><th>timed/runs</th><th>first</th><th>latest</th><th>change points</th></tr>
{_summary_rows(history)}
</table>
{sections}
</body></html>
"""


# ----- JSON -----
def _case_json(case: CaseHistory) -> dict[str, Any]:
    timed = case.timed
    return {
        "key": case.key,
        "points": [
            {"run_id": p.run.run_id, "status": p.status,
             "median_ms": p.summary.median if p.summary else None,
             "ci_low_ms": p.summary.ci_low if p.summary else None,
             "ci_high_ms": p.summary.ci_high if p.summary else None, "n": p.summary.n if p.summary else 0}
            for p in case.points
        ],
        "levels": [
            {"first_run": timed[seg.start].run.run_id, "last_run": timed[seg.end - 1].run.run_id,
             "level_ms": seg.level}
            for seg in case.segments
        ],
        "steps": [
            {"run_id": point.run.run_id, "commit": point.run.commit, "before_ms": step.before,
             "after_ms": step.after, "change": step.change}
            for step, point in case.steps()
        ],
    }


def history_json(history: History) -> str:
    data = {
        "schema": JSON_SCHEMA, "root": str(history.root), "ordering": history.ordering,
        "runs": [{"run_id": r.run_id, "created": r.created, "commit": r.commit, "dirty": r.dirty,
                  "directory": str(r.directory)} for r in history.runs],
        "cases": [_case_json(c) for c in history.cases],
        "skipped": list(history.skipped),
    }
    return json.dumps(data, indent=1, allow_nan=False) + "\n"
