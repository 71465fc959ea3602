"""Render a report as ONE self-contained HTML file: inline CSS, figures as base64 SVG data URIs, no script.

Every piece of text that comes from a run (host names, error messages, variant names, versions) passes
through :func:`html.escape`; the only markup is written here. A Content-Security-Policy forbids any
remote or inline script and any image that is not a data URI, so the page provably opens offline and a
hostile string in a result cannot run. Figures are ``<img>`` elements rather than inline ``<svg>``: each
SVG keeps its own id namespace (matplotlib reuses ids across figures), and an image cannot run script.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from dlbench.report.plots import Plot
from dlbench.report.tables import Cell, Table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d232a;
background:#f6f7f9}
header,main{max-width:1800px;margin:0 auto;padding:0 24px}
header{padding-top:20px}
h1{margin:0 0 4px;font-size:26px}h2{margin:36px 0 8px;padding-bottom:4px;border-bottom:2px solid #c9d3de}
h3{margin:22px 0 6px;font-size:16px}
nav a{margin-right:12px;white-space:nowrap}
.meta{color:#56606b}
section.block{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:8px 14px 14px;margin:12px 0;
overflow-x:auto}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:6px 0}
th,td{padding:3px 10px;text-align:left;vertical-align:top;border-bottom:1px solid #edf0f3}
th{background:#eef2f6;font-weight:600;white-space:nowrap}
tr.group td{border-top:2px solid #b8c4d0}
td.best{font-weight:700;background:#e2f4e4}
td.muted{color:#7b8590}
td.wrap{max-width:640px;white-space:normal}
sup.flag{color:#b45309;font-size:10px;margin-left:3px}
p.caption,figcaption{color:#56606b;font-size:12.5px;margin:4px 0 8px;max-width:1100px}
div.figures{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
div.figures figure{margin:0;flex:0 1 auto;max-width:100%}
figure img{display:block;max-width:100%;height:auto;background:#fff}
figcaption{max-width:760px}
a.csv{font-size:12px;margin-left:8px;font-weight:400}
details summary{cursor:pointer;color:#2b5c8a}
"""


@dataclass(frozen=True)
class Section:
    """A titled part of the page holding tables and figures in order; ``folded`` items start collapsed."""

    anchor: str
    title: str
    intro: str = ""
    items: Sequence[Table | Plot] = ()
    folded: Sequence[Table] = field(default_factory=tuple)


def render_cell(cell: Cell, extra: str = "") -> str:
    classes = " ".join(c for c in ("best" if cell.best else "", "muted" if cell.muted else "", extra) if c)
    attrs = f' class="{classes}"' if classes else ""
    if cell.note:
        attrs += f' title="{escape(cell.note)}"'
    flag = f'<sup class="flag">{escape(cell.flag)}</sup>' if cell.flag else ""
    return f"<td{attrs}>{escape(cell.text)}{flag}</td>"


def render_table(table: Table, csv_href: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = []
    for index, row in enumerate(table.rows):
        group = ' class="group"' if index in table.group_starts and index > 0 else ""
        cells = "".join(render_cell(c, extra="wrap" if len(c.text) > 80 else "") for c in row)
        body.append(f"<tr{group}>{cells}</tr>")
    if not table.rows:
        body.append(f'<tr><td class="muted" colspan="{max(1, len(table.header))}">nothing to show</td></tr>')
    return (
        f'<section class="block" id="table-{escape(table.slug)}"><h3>{escape(table.title)}'
        f'<a class="csv" href="{escape(csv_href)}">CSV</a></h3>'
        f'<p class="caption">{escape(table.caption)}</p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></section>"
    )


def render_plot(plot: Plot, file_href: str) -> str:
    data = base64.b64encode(plot.svg.encode("utf-8")).decode("ascii")
    return (
        f'<figure class="block" id="figure-{escape(plot.slug)}"><img alt="{escape(plot.title)}" '
        f'src="data:image/svg+xml;base64,{data}">'
        f'<figcaption>{escape(plot.title)}: {escape(plot.caption)} '
        f'<a class="csv" href="{escape(file_href)}">SVG</a></figcaption></figure>'
    )


def render_page(title: str, subtitle: str, sections: Sequence[Section], hrefs: dict[str, str]) -> str:
    """The whole document. ``hrefs`` maps a table's or plot's slug to its file beside the page."""
    nav = "".join(f'<a href="#{escape(s.anchor)}">{escape(s.title)}</a>' for s in sections)
    parts = []
    for section in sections:
        parts.append(f'<h2 id="{escape(section.anchor)}">{escape(section.title)}</h2>')
        if section.intro:
            parts.append(f'<p class="caption">{escape(section.intro)}</p>')
        parts.extend(render_items(section.items, hrefs))
        for table in section.folded:
            parts.append(f"<details><summary>{escape(table.title)}</summary>"
                         f"{render_table(table, hrefs[table.slug])}</details>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><p class="meta">{escape(subtitle)}</p><nav>{nav}</nav></header>'
        f"<main>{''.join(parts)}</main></body></html>\n"
    )


def render_items(items: Sequence[Table | Plot], hrefs: dict[str, str]) -> list[str]:
    """Tables one below the other; consecutive figures side by side, wrapping on narrow screens."""
    parts: list[str] = []
    figures: list[str] = []
    for item in items:
        if isinstance(item, Plot):
            figures.append(render_plot(item, hrefs[item.slug]))
            continue
        if figures:
            parts.append(f'<div class="figures">{"".join(figures)}</div>')
            figures = []
        parts.append(render_table(item, hrefs[item.slug]))
    if figures:
        parts.append(f'<div class="figures">{"".join(figures)}</div>')
    return parts
