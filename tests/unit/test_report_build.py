"""build_report and ``dlbench report`` end to end on synthetic runs: files, CSV = stored results, one
self-contained page, escaping, bad input."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlbench.cli import report_cmd
from dlbench.errors import DlbenchError, StoreError
from dlbench.report import build_report
from tests.report_fixtures import FAILED, cases, make_environment, make_run

HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run with two thread counts, two batch sizes, a variant, two workloads, a GPU and failures."""
    root = tmp_path_factory.mktemp("report")
    all_cases = (cases(workloads=(("lenet", ""), ("autoencoder", "pretrain1")), batches=(16, 64), threads=(1, 2),
                       variants=("default", "fast"))
                 + cases(batches=(16, 64), threads=(1,), device="gpu"))
    failing = next(c for c in all_cases if c.workload == "autoencoder" and c.batch_size == 16)
    env = make_environment(calibration={"1": 50.0, "2": 95.0},
                           gpus=[{"index": 0, "name": "Tesla T4", "driver": "550.54", "memory_mb": 15360}])
    run = make_run(root / "run", all_cases, environment=env, failures={failing.key: (FAILED, HOSTILE)})
    index = build_report([run], root / "out")
    return run, index


def test_report_writes_page_tables_and_plots(report: tuple[Path, Path]) -> None:
    _, index = report
    out = index.parent
    assert index.name == "index.html" and index.is_file()
    tables = {p.name for p in (out / "tables").glob("*.csv")}
    assert {"study-lenet.csv", "study-autoencoder-pretrain1.csv", "efficiency-lenet.csv", "environment.csv",
            "packages.csv", "failures.csv", "results.csv", "speedup-threads.csv", "speedup-gpu-cpu.csv",
            "speedup-variants.csv"} <= tables
    plots = sorted(p.name for p in (out / "plots").glob("*.svg"))
    assert "lenet-run1-cpu-t1.svg" in plots and "lenet-run1-gpu-t1.svg" in plots
    assert "lenet-run1-threads.svg" in plots and "autoencoder-pretrain1-run1-threads.svg" in plots
    for name in plots:
        assert (out / "plots" / name).read_text().lstrip().startswith("<?xml")


def test_study_csv_matches_the_stored_results(report: tuple[Path, Path]) -> None:
    run, index = report
    stored = {row["key"]: row for row in read_csv(run / "results.csv")}
    study = read_csv(index.parent / "tables" / "study-lenet.csv")
    assert study, "empty study table"
    checked = 0
    for row in study:
        assert row["batch_size"] == "64"  # the paper's LeNet batch size
        for pass_ in ("gradient", "forward"):
            threads = [] if row["device"] == "gpu" else [f"t{row['threads']}"]  # GPU keys have no thread count
            key = "/".join(["lenet", "-", pass_, row["framework"], row["variant"], row["device"],
                            *threads, "b64", row["precision"]])
            assert row[f"{pass_}_status"] == stored[key]["status"]
            for column in ("median_ms", "ci_low_ms", "ci_high_ms"):
                assert float(row[f"{pass_}_{column}"]) == float(stored[key][column])
            checked += 1
    assert checked == len([k for k in stored if k.startswith("lenet/") and "/b64/" in k])


def test_combined_results_csv_is_the_stored_csv_with_a_run_column(report: tuple[Path, Path]) -> None:
    run, index = report
    stored = read_csv(run / "results.csv")
    combined = read_csv(index.parent / "tables" / "results.csv")
    assert [{k: v for k, v in row.items() if k != "run"} for row in combined] == stored
    assert {row["run"] for row in combined} == {"bench-1 / 20260101-000000-abcd"}


def test_page_is_self_contained_and_has_no_script(report: tuple[Path, Path]) -> None:
    html = report[1].read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    # no remote resource of any kind: every src is a data URI, the only links are the local CSV/SVG files
    sources = re.findall(r'\bsrc="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/svg+xml;base64,") for s in sources)
    ids = re.findall(r'\bid="([^"]*)"', html)
    assert len(ids) == len(set(ids)), "duplicate element ids"
    for href in re.findall(r'\bhref="([^"]*)"', html):
        if href.startswith("#"):
            assert href[1:] in ids, href
        else:
            assert not re.match(r"[a-z]+:", href) and (report[1].parent / href).is_file(), href
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "@import" not in html and "url(" not in html
    # the embedded figures are the SVG files beside the page
    first = sources[0].split(",", 1)[1]
    assert base64.b64decode(first).decode("utf-8").lstrip().startswith("<?xml")


def test_result_text_is_escaped(report: tuple[Path, Path]) -> None:
    html = report[1].read_text(encoding="utf-8")
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;img src=x onerror=alert(1)&gt;" in html
    failures = read_csv(report[1].parent / "tables" / "failures.csv")
    assert [row["error"] for row in failures] == [HOSTILE]  # CSV keeps the raw text


def test_page_shows_environment_calibration_and_sections(report: tuple[Path, Path]) -> None:
    html = report[1].read_text(encoding="utf-8")
    for text in ("AMD EPYC 7B13", "Tesla T4", "1 thread(s): 50.0 GFLOP/s", "2 thread(s): 95.0 GFLOP/s",
                 "alpha-1.0", "blas=openblas", "2026-01-01T00:00:00+00:00", "lenet: time per batch",
                 "autoencoder/pretrain1: time per batch", "Speed-up: N threads against the fewest",
                 "Speed-up: GPU against CPU", "Speed-up: variant against the default variant",
                 "Cases that failed", "batch size 64 (the paper&#x27;s)"):
        assert text in html, text
    assert html.count('class="best') >= 4  # best CPU and best GPU value of each pass


def test_efficiency_csv_uses_the_calibration(report: tuple[Path, Path]) -> None:
    rows = read_csv(report[1].parent / "tables" / "efficiency-lenet.csv")
    cpu = [r for r in rows if r["device"] == "cpu"]
    gpu = [r for r in rows if r["device"] == "gpu"]
    for row in cpu:
        peak = 50.0 if row["threads"] == "1" else 95.0
        assert float(row["forward_peak_fraction"]) == pytest.approx(float(row["forward_gflops_per_s"]) / peak)
    assert all(r["forward_peak_fraction"] == "" for r in gpu)  # no GPU calibration: left blank


def test_a_requested_batch_size_changes_the_tables(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", cases(batches=(16, 64), threads=(1,), frameworks=("alpha",)))
    index = build_report([run], tmp_path / "b16", batch_size=16)
    assert {r["batch_size"] for r in read_csv(index.parent / "tables" / "study-lenet.csv")} == {"16"}


def test_rebuilding_removes_only_the_stale_files_of_the_previous_report(tmp_path: Path) -> None:
    wide = make_run(tmp_path / "wide", cases(batches=(64,), threads=(1, 2), frameworks=("alpha",)))
    narrow = make_run(tmp_path / "narrow", cases(batches=(64,), threads=(1,), frameworks=("alpha",)))
    out = tmp_path / "again"
    build_report([wide], out)
    figures = {p.name for p in (out / "plots").glob("*.svg")}
    mine = {out / "plots" / "my-figure.svg": "<svg/>", out / "tables" / "my-table.csv": "a,b\n",
            out / "notes.txt": "mine"}
    for path, text in mine.items():
        path.write_text(text)
    build_report([narrow], out)
    left = {p.name for p in (out / "plots").glob("*.svg")} - {"my-figure.svg"}
    assert left < figures  # the t2 figures of the first report are gone ...
    assert all(path.read_text() == text for path, text in mine.items())  # ... and nothing of the user's


def test_a_file_in_the_way_that_no_report_wrote_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", cases(batches=(64,), threads=(1,), frameworks=("alpha",)))
    out = tmp_path / "out"
    (out / "tables").mkdir(parents=True)
    (out / "index.html").write_text("my page")
    with pytest.raises(DlbenchError, match="not written by dlbench report"):
        build_report([run], out)
    assert (out / "index.html").read_text() == "my page"
    (out / "index.html").unlink()
    (out / "tables" / "results.csv").write_text("mine")
    with pytest.raises(DlbenchError, match="never overwritten"):
        build_report([run], out)
    assert (out / "tables" / "results.csv").read_text() == "mine"


def test_a_tampered_manifest_cannot_make_the_report_delete_other_files(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", cases(batches=(64,), threads=(1,), frameworks=("alpha",)))
    out = tmp_path / "out"
    build_report([run], out)
    victims = [tmp_path / "victim.txt", out / "notes.txt", out / "tables" / "x.txt"]
    for victim in victims:
        victim.write_text("keep")
    manifest = out / ".dlbench-report.json"
    listed = json.loads(manifest.read_text())["files"]
    listed += ["../victim.txt", "notes.txt", "tables/x.txt", "/etc/hostname", "tables/../../victim.txt"]
    manifest.write_text(json.dumps({"files": listed}))
    build_report([run], out)
    assert all(victim.read_text() == "keep" for victim in victims)


def test_two_runs_are_combined_and_labelled(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", cases(batches=(64,), threads=(1,)), run_id="cpu-run")
    b = make_run(tmp_path / "b", cases(batches=(64,), threads=(1,), device="gpu"), run_id="gpu-run",
                 environment=make_environment(hostname="gpu-box"))
    index = build_report([a, b], tmp_path / "out")
    html = index.read_text(encoding="utf-8")
    assert "bench-1 / cpu-run" in html and "gpu-box / gpu-run" in html
    study = read_csv(index.parent / "tables" / "study-lenet.csv")
    assert {r["run"] for r in study} == {"bench-1 / cpu-run", "gpu-box / gpu-run"}
    gpu_cpu = read_csv(index.parent / "tables" / "speedup-gpu-cpu.csv")
    assert gpu_cpu and {r["cpu_run"] for r in gpu_cpu} == {"bench-1 / cpu-run"}


def test_a_run_without_results_still_gives_a_page(tmp_path: Path) -> None:
    index = build_report([make_run(tmp_path / "empty", [])], tmp_path / "out")
    assert "These runs hold no results yet" in index.read_text(encoding="utf-8")


def test_missing_and_corrupt_runs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no dlbench run at"):
        build_report([tmp_path / "nowhere"], tmp_path / "out")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        build_report([bad], tmp_path / "out")
    with pytest.raises(DlbenchError, match="no run directories"):
        build_report([], tmp_path / "out")


def test_batch_size_and_output_errors(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", cases(batches=(64,), threads=(1,)))
    with pytest.raises(DlbenchError, match="batch-size must be a positive"):
        build_report([run], tmp_path / "out", batch_size=0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DlbenchError, match="cannot write the report"):
        build_report([run], blocker / "sub")


def test_report_command(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", cases(batches=(64,), threads=(1,)))
    runner_out = tmp_path / "cli"
    result = CliRunner().invoke(report_cmd.command, [str(run), "--output", str(runner_out)])
    assert result.exit_code == 0, result.output
    assert f"report: {runner_out / 'index.html'}" in result.output
    assert (runner_out / "tables" / "study-lenet.csv").is_file()


def test_report_command_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    missing_output = runner.invoke(report_cmd.command, [str(tmp_path)])
    assert missing_output.exit_code == 2 and "--output" in missing_output.output
    bad_batch = runner.invoke(report_cmd.command, [str(tmp_path), "-o", str(tmp_path / "o"), "-b", "0"])
    assert bad_batch.exit_code == 2
    with pytest.raises(StoreError, match="no dlbench run"):
        report_cmd.command.main(args=[str(tmp_path / "none"), "-o", str(tmp_path / "o")], standalone_mode=False)
