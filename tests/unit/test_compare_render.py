"""The three renderings of a comparison: terminal table, pull-request markdown, JSON."""

from __future__ import annotations

import json

from dlbench.record.results import FAILED
from dlbench.regress.verdict import Comparison, Policy, compare_runs
from dlbench.regress.verdict_render import md_cell, render_json, render_markdown, render_text
from tests.regress_fixtures import make_case, make_environment, make_result, make_run

QUIET = [10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.05, 10.1, 9.95, 10.0]
SLOW = [x * 1.25 for x in QUIET]
LENET, LSTM, ALEX = make_case("lenet"), make_case("lstm"), make_case("alexnet")


def sample_comparison(**host: str) -> Comparison:
    baseline = make_run("base-run", [make_result(c, QUIET) for c in (LENET, LSTM, ALEX)])
    current = make_run("cur-run", [
        make_result(LENET, SLOW), make_result(LSTM, QUIET),
        make_result(ALEX, status=FAILED, error="boom | <script>alert(1)</script>\nsecond line"),
    ], make_environment(**host))
    return compare_runs(baseline, current, Policy())


def test_markdown_is_a_ready_pull_request_comment() -> None:
    text = render_markdown(sample_comparison())
    lines = text.splitlines()
    assert lines[0] == "### ❌ dlbench: 1 time regression"
    assert "Baseline `base-run` → current `cur-run`" in text
    regressed_row = next(line for line in lines if LENET.key in line)
    assert regressed_row.startswith(
        "| 🔴 regressed | ⚪ unchanged | `lenet/-/forward/torch/default/cpu/t1/b64/float32` |")
    assert "+25.0%" in regressed_row and "10.00 ms" in regressed_row and "12.50 ms" in regressed_row
    # every table row has the header's number of cells: no stray pipe or line break from the error text
    rows = [line for line in lines if line.startswith("| ")]
    assert rows and all(line.count(" | ") == rows[0].count(" | ") for line in rows)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<details><summary>All 3 cases</summary>" in text


def test_markdown_without_regression_says_so_and_shows_environment_warnings() -> None:
    baseline = make_run("b", [make_result(LENET, QUIET)])
    current = make_run("c", [make_result(LENET, QUIET)], make_environment(cpu_model="Other CPU"))
    text = render_markdown(compare_runs(baseline, current, Policy()))
    assert text.startswith("### ✅ dlbench: no regression")
    warning = "> ⚠️ **Environment differs:** CPU model differs: AMD EPYC (baseline) vs Other CPU (current)"
    assert warning in text


def test_md_cell_escapes_pipes_html_and_newlines() -> None:
    assert md_cell("a|b\n<i>c</i>") == "a\\|b &lt;i&gt;c&lt;/i&gt;"


def test_json_carries_verdicts_statistics_and_warnings() -> None:
    data = json.loads(render_json(sample_comparison(python="3.12.0"), strict=True))
    assert data["schema"] == "dlbench-compare/2"
    assert data["exit_code"] == 1 and data["counts"]["regressed"] == 1 and data["counts"]["failed"] == 1
    assert data["policy"]["threshold"] == 0.05 and data["policy"]["strict"] is True
    assert data["warnings"] == ["Python version differs: 3.11.7 (baseline) vs 3.12.0 (current)"]
    cases = {c["key"]: c for c in data["cases"]}
    timing = cases[LENET.key]["timing"]
    assert timing["verdict"] == "regressed" and timing["method"] == "mann-whitney"
    assert timing["ratio"] == 1.25 and timing["ratio_low"] <= 1.25 <= timing["ratio_high"]
    assert timing["p_value"] < 0.01 and timing["baseline_n"] == 10
    assert cases[ALEX.key]["verdict"] == "failed" and cases[ALEX.key]["timing"] is None
    memory = {m["metric"]: m for m in cases[LSTM.key]["memory"]}
    assert set(memory) == {"peak_rss", "rss_rise"} and memory["peak_rss"]["judged"] and not memory["rss_rise"]["judged"]
    assert cases[LSTM.key]["memory_verdict"] == memory["peak_rss"]["verdict"] and data["policy"]["fail_on"] == ["time"]
    assert set(data["memory_counts"]) == {"regressed", "improved", "unchanged"}


def test_json_has_no_infinity() -> None:
    baseline = make_run("b", [make_result(LENET, QUIET, rise_mib=0)])
    current = make_run("c", [make_result(LENET, QUIET, rise_mib=50)])
    text = render_json(compare_runs(baseline, current, Policy()))
    assert "Infinity" not in text and "NaN" not in text
    rise = [m for m in json.loads(text)["cases"][0]["memory"] if m["metric"] == "rss_rise"]
    assert rise[0]["change"] is None


def test_terminal_table_lists_worst_cases_first_with_warnings() -> None:
    text = render_text(sample_comparison(hostname="elsewhere"), width=220)
    assert text.startswith("dlbench compare: 1 time regression (time: 1 regressed, 1 failed, 1 unchanged; memory:")
    assert "warning: host name differs: ci-1 (baseline) vs elsewhere (current)" in text
    order = [text.index(key) for key in (LENET.key, ALEX.key, LSTM.key)]
    assert order == sorted(order)


def test_terminal_table_shows_run_text_literally_not_as_markup() -> None:
    baseline = make_run("b", [make_result(LENET, QUIET)])
    current = make_run("c", [make_result(LENET, status=FAILED, error="bad [/bold] tag [red]x")])
    text = render_text(compare_runs(baseline, current, Policy()), width=220)
    assert "bad [/bold] tag [red]x" in text
