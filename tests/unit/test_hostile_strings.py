"""Stored strings are data, never markup: whatever text a run record, a suite or a path holds, the terminal
renderers show it literally (no MarkupError, no restyling escape sequence), and the pull-request markdown
shows it without turning it into a link, an image, emphasis, raw HTML or an @mention."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from rich.console import Console

from dlbench.cases.spec import Case
from dlbench.display.progress import describe, summary_table
from dlbench.display.terminal import make_console, plain, visible
from dlbench.record.results import FAILED, OK, CaseResult
from dlbench.regress.verdict import Policy, compare_runs
from dlbench.regress.verdict_render import md_cell, md_code, render_markdown, render_text
from tests.conftest import run_cli
from tests.regress_fixtures import make_case, make_result, make_run

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ["[/]", "[red]x", "[bold red on white]hidden", "\x1b[8mconcealed\x1b[0m", "a\rb", "\u202eevil",
           "[link=http://evil]x[/link]", "@octocat", "![i](http://evil/x.png)", "[x](javascript:alert(1))"]
texts = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))


def render(renderable: object, width: int = 300) -> str:
    buffer = io.StringIO()
    make_console(file=buffer, width=width, color_system="truecolor").print(renderable)
    return buffer.getvalue()


def no_escape_from_input(output: str) -> None:
    """Every escape sequence in the output is one rich wrote for a style (SGR), never one from the input."""
    assert re.sub(r"\x1b\[[0-9;]*m", "", output).count("\x1b") == 0


@settings(max_examples=150, deadline=None)
@given(variant=texts, error=texts, status=texts)
def test_summary_table_and_progress_line_show_stored_strings_literally(variant: str, error: str,
                                                                      status: str) -> None:
    ok = CaseResult(Case("lenet", "", "forward", "fake", variant, "cpu", 1, 16), OK, samples_ms=(1.0, 1.1, 1.2))
    bad = CaseResult(Case("lenet", "", "gradient", "fake", variant, "cpu", 1, 16), status, error=error)
    output = render(summary_table([ok, bad], title=f"run {variant}"))
    no_escape_from_input(output)
    for result in (ok, bad):
        line = describe(result)
        assert visible(variant) in line
        no_escape_from_input(render(plain(line)))
    if variant.strip() and len(variant) <= 20 and not any(ch.isspace() for ch in variant):
        assert visible(variant) in output


@settings(max_examples=100, deadline=None)
@given(note=texts, key_variant=texts)
def test_compare_table_shows_error_texts_literally(note: str, key_variant: str) -> None:
    case = make_case(variant=key_variant)
    baseline = make_run("base", [make_result(case)])
    current = make_run(f"cur {note}", [make_result(case, status=FAILED, error=note)])
    text = render_text(compare_runs(baseline, current, Policy()), width=400)
    assert "\x1b" not in text


def test_a_stored_closing_tag_is_shown_not_parsed() -> None:
    ok = CaseResult(Case("lenet", "", "forward", "fake", "[/]", "cpu", 1, 16), OK, samples_ms=(1.0, 1.1, 1.2))
    assert "[/]" in render(summary_table([ok]))
    assert "[/]" in describe(ok)


def test_escape_sequences_are_made_visible() -> None:
    assert visible("\x1b[8mx") == "\\x1b[8mx"
    assert visible("a\u202eb") == "a\\u202eb"
    assert visible("tab\tand\nnewline") == "tab\tand\nnewline"


def test_every_console_is_made_by_the_terminal_module() -> None:
    """A Console made elsewhere would read markup again (rich's default): one factory, markup off."""
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "dlbench").rglob("*.py")
                 if path.name != "terminal.py" and re.search(r"\bConsole\(", path.read_text())]
    assert offenders == []
    assert make_console(file=io.StringIO())._markup is False  # noqa: SLF001 (the property under test)


def test_no_inline_markup_in_the_source() -> None:
    """Consoles read no markup, so a "[red]...[/red]" in the code would be printed as such: styles are given
    as Text styles (plain(text, "red"))."""
    tag = re.compile(r"\[/?(?:bold|dim|italic|red|green|yellow|blue|cyan|magenta)\b[^\]]*\]")
    offenders = [f"{path.relative_to(ROOT)}:{number}" for path in (ROOT / "dlbench").rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1) if tag.search(line)]
    assert offenders == []


def test_tiny_or_zero_width_never_folds_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    for columns in ("0", "1", "12"):
        monkeypatch.setenv("COLUMNS", columns)
        assert make_console(file=io.StringIO()).width >= 60
        assert Console(file=io.StringIO()).width < 60  # what rich alone would do


# ----- markdown -----
MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")
ACTIVE = {"link_open", "image", "html_inline", "html_block", "em_open", "strong_open", "s_open"}
ZWSP = "\u200b"


def inline_tokens(markdown: str) -> list:  # type: ignore[type-arg]
    found = []
    for token in MD.parse(markdown):
        found.append(token)
        found.extend(token.children or [])
    return found


def shown_text(tokens: list) -> str:  # type: ignore[type-arg]
    return "".join(t.content for t in tokens if t.type in ("text", "code_inline"))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.sampled_from(HOSTILE), st.text(max_size=60),
                      st.text(alphabet="[]()!<>@#*_~`\\|:/w.ax \n", max_size=40)))
def test_markdown_cells_are_inert_and_show_the_text(text: str) -> None:
    text = text.replace(ZWSP, "")
    row = f"| a | {md_cell(text)} | {md_code(text)} |"
    tokens = inline_tokens(f"| h | i | j |\n|---|---|---|\n{row}\n")
    assert not ACTIVE & {t.type for t in tokens}
    assert sum(t.type == "td_open" for t in tokens) == 3  # nothing broke out of its cell
    cells = [t for t in tokens if t.type == "inline"][3:]
    flat = " ".join(visible(text).split())
    assert shown_text(cells[1].children).replace(ZWSP, "") == flat
    # what GitHub links or notifies by itself: @name, #123, scheme://, www.
    assert not re.search(r"[@#][\w-]|[A-Za-z]://|www\.", md_cell(text).replace("\\", ""))


def test_pull_request_comment_neutralises_links_images_and_mentions() -> None:
    case = make_case()
    error = "see [here](http://evil.example) ![x](http://evil.example/p.png) cc @octocat <img src=x>"
    comparison = compare_runs(make_run("base", [make_result(case)]),
                              make_run("cur", [make_result(case, status=FAILED, error=error)]), Policy())
    text = render_markdown(comparison)
    tokens = inline_tokens(text)
    assert not {"link_open", "image"} & {t.type for t in tokens}
    assert "<img" not in text and "evil.example" in text
    assert "@octocat" not in text and f"@{ZWSP}octocat" in text


def test_zero_columns_still_print_the_results_path_whole(tmp_path: Path) -> None:
    out = tmp_path / ("a-rather-long-directory-name-" * 3) / "run"
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--workload", "lenet", "--pass", "forward",
                   "-o", str(out), env={"COLUMNS": "0"})
    assert proc.returncode == 0, proc.stderr
    assert f"results: {out / 'results.csv'}" in proc.stderr.splitlines()[-1]
