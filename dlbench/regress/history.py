"""Every stored run of each case, in order, with the runs where its timing changed level.

``dlbench history RESULTS_ROOT`` reads every run directory under the root (any directory holding a
``run.json``; unreadable ones are skipped and named, never fatal), orders the runs, and for each case key
fits constant levels to its per-run medians (:mod:`dlbench.regress.steps`).

Order: by git commit when every run recorded a commit that the repository (``repo``, the current
directory by default) knows, using the commits' topological order (``git rev-list --topo-order``: a
rebased or back-dated commit is still placed after its parents), runs of one commit by creation time.
Otherwise by the runs' creation time, for all runs: mixing both orders would place runs arbitrarily.
"""

from __future__ import annotations

import fnmatch
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dlbench.errors import DlbenchError, StoreError
from dlbench.record.results import OK, CaseResult
from dlbench.record.store import RUN_FILE, RunRecord, load_run
from dlbench.regress.steps import Segment, Step, fit_levels, steps_between
from dlbench.statistics.samples import Summary

GIT_ORDER = "git commit order"
TIME_ORDER = "run creation time"
GLOB_CHARS = "*?["
GIT_TIMEOUT_S = 20


@dataclass(frozen=True)
class RunInfo:
    """Where a run came from: enough to place it in time and to label it on a plot."""

    run_id: str
    directory: Path
    created: str
    commit: str  # "" when the run recorded none
    dirty: bool

    @property
    def label(self) -> str:
        """A short axis label: the commit (``abc1234``, ``+`` when the tree was dirty) or the date."""
        if self.commit:
            return self.commit[:7] + ("+" if self.dirty else "")
        return self.created[:16].replace("T", " ") or self.run_id


@dataclass(frozen=True)
class Point:
    """One case in one run."""

    run: RunInfo
    status: str
    summary: Summary | None  # None when the case has no timing in that run


@dataclass(frozen=True)
class CaseHistory:
    """A case through the runs. ``segments`` index into :attr:`timed` (the points with a timing)."""

    key: str
    points: tuple[Point, ...]
    segments: tuple[Segment, ...]

    @property
    def timed(self) -> list[Point]:
        return [p for p in self.points if p.summary is not None]

    def steps(self) -> list[tuple[Step, Point]]:
        """Each change of level with the first run at the new level."""
        timed = self.timed
        return [(step, timed[step.index]) for step in steps_between(self.segments)]


@dataclass(frozen=True)
class History:
    root: Path
    ordering: str  # GIT_ORDER or TIME_ORDER
    runs: tuple[RunInfo, ...]
    cases: tuple[CaseHistory, ...]
    skipped: tuple[str, ...]  # one line per run directory that could not be read


# ----- finding and ordering runs -----
def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under ``root`` (itself included) holding a run.json, hidden directories excepted."""
    found = []
    for run_file in root.rglob(RUN_FILE):
        relative = run_file.relative_to(root).parts[:-1]
        if not any(part.startswith(".") for part in relative):
            found.append(run_file.parent)
    return sorted(found)


def load_runs(root: Path) -> tuple[list[tuple[Path, RunRecord]], list[str]]:
    loaded, skipped = [], []
    for directory in find_run_dirs(root):
        try:
            loaded.append((directory, load_run(directory)))
        except StoreError as exc:
            skipped.append(str(exc))
    return loaded, skipped


def run_info(directory: Path, record: RunRecord) -> RunInfo:
    git = record.environment.git
    return RunInfo(record.run_id, directory, record.created, git.commit, git.dirty)


def _git(repo: Path, args: Sequence[str], stdin: str = "") -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_positions(commits: Iterable[str], repo: Path) -> dict[str, int] | None:
    """Topological position of each commit (parents first), or None unless git knows every one of them."""
    wanted = sorted(set(commits))
    if not wanted:
        return None
    checked = _git(repo, ["cat-file", "--batch-check"], "\n".join(wanted) + "\n")
    if checked is None:
        return None
    full = {}
    for name, line in zip(wanted, checked.splitlines(), strict=False):
        parts = line.split()
        if len(parts) < 2 or parts[1] != "commit":
            return None
        full[name] = parts[0]
    if len(full) != len(wanted):
        return None
    listed = _git(repo, ["rev-list", "--topo-order", "--reverse", *full.values()])
    if listed is None:
        return None
    position = {sha: i for i, sha in enumerate(listed.split())}
    if not all(sha in position for sha in full.values()):
        return None
    return {name: position[sha] for name, sha in full.items()}


def _created_key(run: RunInfo) -> tuple[float, str]:
    try:
        return datetime.fromisoformat(run.created).timestamp(), run.run_id
    except ValueError:
        return float("inf"), run.run_id


def order_runs(runs: Sequence[RunInfo], repo: Path | None) -> tuple[list[RunInfo], str]:
    """The runs in commit order when possible, else in creation order (see module docstring)."""
    if repo is not None and runs and all(run.commit for run in runs):
        positions = git_positions((run.commit for run in runs), repo)
        if positions is not None:
            return sorted(runs, key=lambda r: (positions[r.commit], *_created_key(r))), GIT_ORDER
    return sorted(runs, key=_created_key), TIME_ORDER


# ----- series per case -----
def matches(key: str, patterns: Sequence[str]) -> bool:
    """No pattern: every case. A pattern with * ? [ is a glob on the whole key, otherwise a substring."""
    if not patterns:
        return True
    return any(
        fnmatch.fnmatchcase(key, p) if any(c in p for c in GLOB_CHARS) else p in key for p in patterns
    )


def case_history(key: str, points: Sequence[Point], penalty: float | None = None) -> CaseHistory:
    medians = [p.summary.median for p in points if p.summary is not None]
    segments = fit_levels(medians, penalty) if medians and min(medians) > 0 else []
    return CaseHistory(key, tuple(points), tuple(segments))


def _point(run: RunInfo, results: dict[str, CaseResult], key: str) -> Point | None:
    result = results.get(key)
    if result is None:
        return None
    summary = result.summary() if result.status == OK else None
    return Point(run, result.status, summary)


def _by_key(record: RunRecord) -> dict[str, CaseResult]:
    """The first result of each case key, found once per run: a scan of the run per key made the history of
    a 10,000-case run take minutes."""
    found: dict[str, CaseResult] = {}
    for result in record.results:
        found.setdefault(result.case.key, result)
    return found


def build_history(root: Path, patterns: Sequence[str] = (), repo: Path | None = Path("."),
                  penalty: float | None = None) -> History:
    """Read, order and analyse every run under ``root``; bad input raises :class:`DlbenchError`."""
    if not root.is_dir():
        raise DlbenchError(f"results root {root} is not a directory")
    loaded, skipped = load_runs(root)
    if not loaded:
        raise DlbenchError(f"no readable dlbench run under {root} (looked for */{RUN_FILE})")
    by_run = {run_info(directory, record): record for directory, record in loaded}
    ordered, ordering = order_runs(list(by_run), repo)
    records = [by_run[run] for run in ordered]
    all_keys = sorted({r.case.key for record in records for r in record.results})
    keys = [key for key in all_keys if matches(key, patterns)]
    if not keys:
        example = all_keys[0] if all_keys else "(the runs hold no cases)"
        raise DlbenchError(f"no case matches {', '.join(patterns)}; keys look like {example}")
    cases = []
    indexed = [_by_key(record) for record in records]
    for key in keys:
        points = [p for run, results in zip(ordered, indexed, strict=True) if (p := _point(run, results, key))]
        cases.append(case_history(key, points, penalty))
    return History(root, ordering, tuple(ordered), tuple(cases), tuple(skipped))
