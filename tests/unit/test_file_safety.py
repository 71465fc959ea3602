"""No command removes or overwrites a file it did not create, and no input file can hang or crash a reader:
empty paths, outputs onto inputs or run records, a results.csv in the way, FIFOs, huge or random suite files."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlbench.cli import COMMANDS, cli, main
from dlbench.cli.paths import NonEmptyPath
from dlbench.errors import DlbenchError
from dlbench.plan.planner import MAX_CASES
from dlbench.plan.suite import Suite, load_suite, parse_suite
from tests.conftest import assert_one_line_error, run_cli
from tests.regress_fixtures import make_result, make_run, write_run


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real entry point, in-process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


def one_line_error(result: tuple[int, str, str], fragment: str) -> None:
    code, _, err = result
    assert code == 2, result
    assert "Traceback" not in err and fragment.lower() in err.lower(), err
    assert len([line for line in err.splitlines() if line.strip()]) <= 3, err


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", make_run("r1", [make_result()]))


# ----- empty paths -----
def test_every_path_parameter_refuses_the_empty_path() -> None:
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        for param in command.params:
            if isinstance(param.type, click.Path):
                assert isinstance(param.type, NonEmptyPath), f"{name} {param.name}"


@pytest.mark.parametrize("args", [
    ("run", "--framework", "fake", "-o", ""), ("run", "--resume", ""), ("report", "{run}", "-o", ""),
    ("report", "", "-o", "{tmp}/r"), ("export", "{run}", "-o", ""), ("export", ""),
    ("compare", "{run}", "{run}", "--markdown", ""), ("compare", "{run}", "{run}", "--json", ""),
    ("compare", "", "{run}"), ("history", ""), ("history", "{tmp}", "-o", ""),
])
def test_an_empty_path_is_refused(capsys: pytest.CaptureFixture[str], run_dir: Path, tmp_path: Path,
                                  args: tuple[str, ...]) -> None:
    filled = [a.format(run=run_dir, tmp=tmp_path) for a in args]
    cwd_before = set(os.listdir())
    one_line_error(invoke(capsys, *filled), "empty path")
    assert set(os.listdir()) == cwd_before


# ----- outputs onto inputs and run records -----
@pytest.mark.parametrize("target", ["run.json", "run.jsonl", "results.csv"])
def test_export_never_overwrites_a_run_record(capsys: pytest.CaptureFixture[str], run_dir: Path,
                                              tmp_path: Path, target: str) -> None:
    other = write_run(tmp_path / "other", make_run("r2", [make_result()]))
    (other / "results.csv").write_text("their csv")
    for directory in (run_dir, other):
        path = directory / target
        if not path.exists():
            path.write_text("csv")
        before = path.read_bytes()
        one_line_error(invoke(capsys, "export", str(run_dir), "-o", str(path)), "never overwritten")
        assert path.read_bytes() == before


def test_export_never_writes_onto_its_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    record = tmp_path / "copy.json"
    record.write_text(make_run("r1", [make_result()]).to_json())
    before = record.read_bytes()
    one_line_error(invoke(capsys, "export", str(record), "-o", str(record)), "input")
    assert record.read_bytes() == before


def test_compare_reports_never_overwrite_an_input(capsys: pytest.CaptureFixture[str], run_dir: Path,
                                                  tmp_path: Path) -> None:
    other = write_run(tmp_path / "other", make_run("r2", [make_result()]))
    before = (run_dir / "run.json").read_bytes()
    for option in ("--json", "--markdown"):
        result = invoke(capsys, "compare", str(run_dir), str(other), option, str(run_dir / "run.json"))
        one_line_error(result, "never overwritten")
    assert (run_dir / "run.json").read_bytes() == before
    fine = tmp_path / "verdicts.json"
    assert invoke(capsys, "compare", str(run_dir), str(other), "--json", str(fine))[0] == 0
    assert fine.exists()


def test_run_refuses_a_directory_with_a_results_csv_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("my numbers")
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--workload", "lenet", "--pass", "forward",
                   "--quiet", "-o", str(out))
    assert_one_line_error(proc, "never overwritten")
    assert (out / "results.csv").read_text() == "my numbers"
    assert not (out / "run.json").exists()


# ----- inputs that are not regular files -----
@pytest.mark.parametrize("command", [
    ("history", "{root}"), ("report", "{run}", "-o", "{root}/report"), ("compare", "{run}", "{run}"),
    ("export", "{run}"), ("run", "--resume", "{run}"),
])
def test_a_fifo_run_record_is_refused_not_waited_for(tmp_path: Path, command: tuple[str, ...]) -> None:
    run = tmp_path / "root" / "run"
    run.mkdir(parents=True)
    os.mkfifo(run / "run.json")
    write_run(tmp_path / "root" / "good", make_run("good", [make_result()]))
    args = [a.format(root=tmp_path / "root", run=run) for a in command]
    proc = run_cli(*args, timeout=120)  # before the fix: blocked forever on open()
    assert "Traceback" not in proc.stderr
    if command[0] == "history":
        assert proc.returncode == 0 and "not a regular file" in proc.stdout
    else:
        assert_one_line_error(proc, "not a regular file")


def test_a_fifo_or_a_huge_suite_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fifo = tmp_path / "s.toml"
    os.mkfifo(fifo)
    one_line_error(invoke(capsys, "run", "--suite", str(fifo), "--framework", "fake"), "not a regular file")
    huge = tmp_path / "huge.toml"
    huge.write_text('workloads = ["lenet"]\n' + "# padding\n" * 50_000 + '[devices.cpu]\nbatch_sizes = [1]\n')
    one_line_error(invoke(capsys, "run", "--suite", str(huge), "--framework", "fake"), "limit")


# ----- suite files: whatever they hold, a Suite or one SuiteError -----
toml_scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=12),
                         st.floats(allow_nan=False, allow_infinity=False))
toml_values = st.recursive(toml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
SUITE_KEYS = ["name", "description", "workloads", "passes", "frameworks", "variants", "precision", "devices",
              "measure", "seed", "cpu", "gpu", "threads", "batch_sizes", "lenet", "lstm", "max_time_s",
              "min_samples", "timeout_s"]
keys = st.one_of(st.sampled_from(SUITE_KEYS), st.text(max_size=8))
suite_like = st.recursive(
    toml_scalars | st.sampled_from(["lenet", "lstm", "autoencoder/pretrain1", "forward", "cpu", "gpu"]),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=20)


def accepts_or_explains(parse: Callable[[], Suite]) -> None:
    try:
        suite = parse()
    except DlbenchError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert suite.record().workloads


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(keys, suite_like, max_size=6))
def test_any_suite_table_is_a_suite_or_one_clear_error(data: dict[str, Any]) -> None:
    accepts_or_explains(lambda: parse_suite(data, "s.toml"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_any_suite_file_is_a_suite_or_one_clear_error(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "fuzz.toml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    accepts_or_explains(lambda: load_suite(str(path)))


def test_deeply_nested_suite_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(DlbenchError):
        load_suite(str(path))
    assert tomllib  # the parser of suites is the standard library's


def test_a_plan_too_large_to_store_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sizes = ", ".join(str(n) for n in range(1, MAX_CASES // 2 + 2))
    suite = tmp_path / "wide.toml"
    suite.write_text(f'workloads = ["lenet"]\npasses = ["forward", "gradient"]\n'
                     f"[devices.cpu]\nbatch_sizes = [{sizes}]\n")
    out = tmp_path / "never"
    one_line_error(invoke(capsys, "run", "--suite", str(suite), "--framework", "fake", "-o", str(out)),
                   "more than the 20,000 one run takes")
    assert not out.exists()
