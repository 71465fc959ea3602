"""The terminal summary: the study's layout, fastest value marked, failures visible."""

import re

from rich.console import Console

from dlbench.cases.spec import Case
from dlbench.display.progress import summary_table
from dlbench.record.results import OK, TIMEOUT, CaseResult, failed_result


def case(framework: str, pass_: str = "forward") -> Case:
    return Case("lenet", "", pass_, framework, "v", "cpu", 1, 64)


def render(results: list[CaseResult]) -> str:
    console = Console(width=200, record=True, color_system="truecolor")
    console.print(summary_table(results))
    return console.export_text(styles=True)


def test_one_column_per_framework_and_the_fastest_is_marked() -> None:
    results = [
        CaseResult(case("a"), OK, samples_ms=(5.0, 5.0, 5.1)),
        CaseResult(case("b"), OK, samples_ms=(3.0, 3.0, 3.1)),
        failed_result(case("c"), TIMEOUT, "no result"),
    ]
    text = render(results)
    plain = Console(width=200, record=True)
    plain.print(summary_table(results))
    lines = [line for line in plain.export_text().splitlines() if "lenet" in line]
    assert len(lines) == 1  # one row per workload/pass/setting, frameworks side by side
    assert "5" in lines[0] and "3" in lines[0] and "timeout" in lines[0]
    bold_green = r"\x1b\[1;32m\s*"
    assert re.search(bold_green + "3", text) and not re.search(bold_green + "5", text)


def test_each_environment_of_an_ab_run_has_its_own_column() -> None:
    results = [CaseResult(case("a"), OK, samples_ms=(5.0, 5.0, 5.1), environment="base"),
               CaseResult(case("a"), OK, samples_ms=(3.0, 3.0, 3.1), environment="head")]
    plain = Console(width=200, record=True)
    plain.print(summary_table(results))
    text = plain.export_text()
    assert "base" in text and "head" in text
    row = next(line for line in text.splitlines() if "lenet" in line)
    assert "5.0" in row and "3.0" in row  # both sides shown, neither overwrites the other
