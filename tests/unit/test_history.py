"""``dlbench history``: finding runs, ordering them (time or git), case series, HTML/JSON, the command."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dlbench.errors import DlbenchError
from dlbench.record.results import FAILED
from dlbench.regress.history import GIT_ORDER, TIME_ORDER, build_history, find_run_dirs, matches
from dlbench.regress.history_render import history_html, history_json
from tests.regress_fixtures import (
    dlbench_main,
    make_case,
    make_environment,
    make_result,
    make_run,
    noisy_samples,
    write_run,
)

LENET, LSTM = make_case("lenet"), make_case("lstm")


def write_series(root: Path, medians: list[float], *, commits: list[str] | None = None,
                 failed_at: int | None = None) -> None:
    """One run per median (day i), LeNet at that median, LSTM steady (failed in run ``failed_at``)."""
    rng = np.random.default_rng(0)
    for i, median in enumerate(medians):
        env = make_environment()
        if commits is not None:
            env["git"] = {"commit": commits[i], "dirty": False}
        lstm = (make_result(LSTM, status=FAILED, error="boom") if i == failed_at
                else make_result(LSTM, noisy_samples(rng, 9, 4.0, 0.01, 0.0)))
        results = [make_result(LENET, noisy_samples(rng, 9, median, 0.01, 0.0)), lstm]
        created = f"2026-01-{i + 1:02d}T10:00:00+00:00"
        write_run(root / f"run{i:02d}", make_run(f"run{i:02d}", results, env, created=created))


def test_runs_are_found_recursively_and_hidden_or_broken_ones_skipped(tmp_path: Path) -> None:
    write_series(tmp_path / "nightly", [10.0, 10.0])
    write_run(tmp_path / "pr" / "123" / "cur", make_run("pr-cur", [make_result(LENET)]))
    write_run(tmp_path / ".cache" / "x", make_run("hidden", [make_result(LENET)]))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{oops")
    found = find_run_dirs(tmp_path)
    assert tmp_path / ".cache" / "x" not in found and len(found) == 4
    history = build_history(tmp_path, repo=None)
    assert {r.run_id for r in history.runs} == {"run00", "run01", "pr-cur"}
    assert len(history.skipped) == 1 and "not valid JSON" in history.skipped[0]


def test_runs_are_ordered_by_creation_time_and_a_step_is_found(tmp_path: Path) -> None:
    medians = [10.0] * 6 + [12.0] * 6
    write_series(tmp_path, medians, failed_at=3)
    # a directory name that sorts first but was created last must still come last
    write_run(tmp_path / "aaa-latest", make_run("latest", [make_result(LENET, [12.0] * 7)],
                                                created="2026-02-01T00:00:00+00:00"))
    history = build_history(tmp_path, repo=None)
    assert history.ordering == TIME_ORDER
    assert [r.run_id for r in history.runs][-1] == "latest"
    lenet = next(c for c in history.cases if c.key == LENET.key)
    ((step, point),) = lenet.steps()
    assert point.run.run_id == "run06" and step.change == pytest.approx(0.2, abs=0.02)
    lstm = next(c for c in history.cases if c.key == LSTM.key)
    assert len(lstm.points) == 12 and len(lstm.timed) == 11 and lstm.steps() == []
    assert lstm.points[3].status == FAILED and lstm.points[3].summary is None


def git(repo: Path, *args: str, date: str | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    return subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_runs_follow_git_commit_order_when_every_commit_is_known(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commits = []
    # the second commit is back-dated: topological order, not dates, must place it after the first
    for message, date in (("one", "2026-01-10T00:00:00"), ("two", "2025-06-01T00:00:00"),
                          ("three", "2026-01-12T00:00:00")):
        git(repo, "commit", "-q", "--allow-empty", "-m", message, date=date)
        commits.append(git(repo, "rev-parse", "HEAD"))
    root = tmp_path / "results"
    # runs created in the opposite order of their commits
    write_series(root, [10.0, 11.0, 12.0], commits=list(reversed(commits)))
    history = build_history(root, repo=repo)
    assert history.ordering == GIT_ORDER
    assert [r.commit for r in history.runs] == commits
    assert history.runs[0].label == commits[0][:7]
    # one commit git does not know: creation time for every run
    write_run(root / "stranger", make_run("stranger", [make_result(LENET)],
                                          {**make_environment(), "git": {"commit": "f" * 40}}))
    assert build_history(root, repo=repo).ordering == TIME_ORDER
    assert build_history(root, repo=tmp_path / "not-a-repo").ordering == TIME_ORDER


def test_case_patterns_select_by_glob_or_substring(tmp_path: Path) -> None:
    write_series(tmp_path, [10.0, 10.0])
    assert matches(LENET.key, []) and matches(LENET.key, ["lenet"]) and not matches(LENET.key, ["lstm"])
    assert matches(LENET.key, ["lenet/*/forward/*"]) and not matches(LENET.key, ["lenet/*/gradient/*"])
    assert [c.key for c in build_history(tmp_path, ["lstm/*"], repo=None).cases] == [LSTM.key]
    with pytest.raises(DlbenchError, match="no case matches alexnet"):
        build_history(tmp_path, ["alexnet"], repo=None)


def test_bad_roots_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DlbenchError, match="is not a directory"):
        build_history(tmp_path / "missing", repo=None)
    with pytest.raises(DlbenchError, match="no readable dlbench run"):
        build_history(tmp_path, repo=None)


def test_html_page_is_self_contained_and_escaped(tmp_path: Path) -> None:
    evil = make_case("<script>alert(1)</script>")
    for i in range(3):
        write_run(tmp_path / f"r{i}", make_run(f"<b>run{i}</b>", [make_result(evil), make_result(LENET)],
                                               created=f"2026-01-0{i + 1}T00:00:00+00:00"))
    page = history_html(build_history(tmp_path, repo=None))
    assert "<script>" not in page and "&lt;script&gt;" in page and "<b>run" not in page
    assert page.count('src="data:image/svg+xml;base64,') == 2
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")


def test_json_lists_points_levels_and_steps(tmp_path: Path) -> None:
    write_series(tmp_path, [10.0] * 5 + [13.0] * 5)
    data = json.loads(history_json(build_history(tmp_path, [LENET.key], repo=None)))
    assert data["schema"] == "dlbench-history/1" and data["ordering"] == TIME_ORDER
    (case,) = data["cases"]
    assert len(case["points"]) == 10 and len(case["levels"]) == 2
    (step,) = case["steps"]
    assert step["run_id"] == "run05" and step["change"] == pytest.approx(0.3, abs=0.03)


def run_history(*args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    return dlbench_main(monkeypatch, *args)


def test_history_command_prints_the_table_and_writes_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "results", [10.0] * 4 + [12.0] * 4)
    out = tmp_path / "pages"
    assert run_history("history", str(tmp_path / "results"), "--case", "lenet", "--output", str(out),
                       "--repo", str(tmp_path), monkeypatch=monkeypatch) == 0
    printed = capsys.readouterr().out
    assert LENET.key in printed and LSTM.key not in printed
    assert re.search(r"→ 1[12]\.\d+ ms \(\+(19|20)\.\d%\)", printed)
    assert (out / "history.html").read_text().startswith("<!doctype html>")
    assert json.loads((out / "history.json").read_text())["cases"][0]["key"] == LENET.key


def test_history_command_bad_input_exits_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run_history("history", str(tmp_path / "nothing"), monkeypatch=monkeypatch) == 2
    assert "is not a directory" in capsys.readouterr().err
    write_series(tmp_path / "results", [10.0, 10.0])
    assert run_history("history", str(tmp_path / "results"), "--case", "vgg", monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert "no case matches vgg" in err and "Traceback" not in err
