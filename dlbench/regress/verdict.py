"""Turn a baseline run and a current run into per-case verdicts and a CI exit code.

Cases are matched by their stable :attr:`dlbench.cases.spec.Case.key`. Time and memory get a verdict each,
because a case can become twice as fast and take more memory: one verdict for both would call it regressed.

A case's **time** regressed when it is slower both *significantly* (see :mod:`dlbench.statistics.significance`)
and by more than the threshold. Requiring both is what keeps a noisy CI machine quiet: significance alone
flags 1% shifts that nobody cares about when there are many samples, the threshold alone flags noise when
there are few.

A case's **memory** verdict rests on one figure, the first of :data:`JUDGED_MEMORY` that both runs have
(docs/ci.md says why that one, from its measured spread); every other reading is compared and shown but does
not decide. A figure is read once per round, so with two rounds or more on both sides it must differ beyond
its variation between rounds (:func:`~dlbench.statistics.significance.readings_change`), and always by more
than the relative ``memory_threshold`` *and* by more than ``memory_floor_bytes`` (a few MiB of page-granular
allocator slack is not a regression, even when the rise itself is small). Improvements are the mirror image:
smaller or faster by more than ``1 - 1/(1 + threshold)`` (symmetric in log space: undoing a 5% slow-down
counts as a 5% improvement). Which of the two verdicts fails CI is the policy's ``fail_on`` (time by
default).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from dlbench.cases.spec import Case
from dlbench.record.results import MEMORY_METRICS, OK, UNAVAILABLE, CaseResult, Memory
from dlbench.record.store import RunRecord
from dlbench.regress.env_diff import environment_differences
from dlbench.regress.normalize import case_mark, control_shift, control_warning, fitting_kernel, normalized, ridge_point
from dlbench.runner.drift import COMPUTE, MEMORY
from dlbench.statistics.moderated import VariancePrior
from dlbench.statistics.significance import ReadingsChange, TimingChange, readings_change, round_prior, rounds_change

REGRESSED = "regressed"
IMPROVED = "improved"
UNCHANGED = "unchanged"
NEW = "new"
MISSING = "missing"
FAILED = "failed"
VERDICTS = (REGRESSED, FAILED, IMPROVED, MISSING, NEW, UNCHANGED)  # also the display order
MEMORY_VERDICTS = (REGRESSED, IMPROVED, UNCHANGED)

TIME_ASPECT, MEMORY_ASPECT = "time", "memory"
ASPECTS = (TIME_ASPECT, MEMORY_ASPECT)  # what a regression may fail CI on (--fail-on)
# The memory figure a memory verdict rests on: the first that both runs have. The device and framework
# peaks are the allocators' own counts of what the case needed; the peak resident set of the worker is there
# for every case. The rise over the resident set before the build is shown but does not decide: it differs
# between worker processes of the same install by more than the threshold (docs/ci.md, "Memory verdicts").
JUDGED_MEMORY = ("device_peak", "framework_peak", "peak_rss")

# Relative difference of the worker's CPU time / wall time between the runs worth a note: a lower share
# means other processes took the core, so a slow-down may be the machine's, not the code's.
CPU_SHARE_TOLERANCE = 0.2

# The round-level tests (when both runs have two rounds or more): see dlbench.statistics.moderated.
MODERATED = "moderated"
PLAIN_T = "t"
ROUND_TESTS = (MODERATED, PLAIN_T)


@dataclass(frozen=True)
class Policy:
    """How big and how certain a change must be to count."""

    threshold: float = 0.05  # relative timing change
    alpha: float = 0.01  # significance level of the two-sided test on the samples
    memory_threshold: float = 0.10  # relative memory change
    memory_floor_bytes: int = 8 * 2**20  # and at least this many bytes
    control_tolerance: float = 0.03  # relative move of the drift control that marks a changed machine
    normalize_control: bool = False  # scale current times by the control's speed ratio
    round_test: str = MODERATED  # MODERATED: variances shrunk towards the across-case prior; PLAIN_T: not
    paired: bool = False  # both sides are environments of one interleaved run: pair their rounds
    paired_samples: bool = False  # ... which took turns sample by sample (--interleave samples): pair samples
    fail_on: tuple[str, ...] = (TIME_ASPECT,)  # which verdicts fail CI when they regress (ASPECTS)


@dataclass(frozen=True)
class MemoryChange:
    """One memory reading (bytes) of a case in both runs."""

    metric: str  # one of MEMORY_METRICS
    baseline: int  # the median over the rounds
    current: int
    verdict: str  # REGRESSED, IMPROVED or UNCHANGED
    judged: bool = False  # the figure the case's memory verdict rests on
    test: ReadingsChange | None = None  # the test against the variation between rounds

    @property
    def change(self) -> float | None:
        return self.current / self.baseline - 1.0 if self.baseline > 0 else None


@dataclass(frozen=True)
class CaseComparison:
    """The verdict on one case key, with the evidence it rests on."""

    case: Case
    verdict: str
    baseline_status: str | None  # None: the case is not in that run
    current_status: str | None
    timing: TimingChange | None = None
    timing_verdict: str | None = None
    memory: tuple[MemoryChange, ...] = ()
    notes: tuple[str, ...] = ()
    memory_verdict: str | None = None  # of the judged memory figure; None when no figure is in both runs

    @property
    def judged_memory(self) -> MemoryChange | None:
        return next((m for m in self.memory if m.judged), None)

    @property
    def key(self) -> str:
        return self.case.key

    @property
    def newly_failed(self) -> bool:
        """A failure the baseline did not have (the case was ok there, or is new), used by ``--strict``.
        ``unavailable`` is no failure: the case cannot run here (no GPU, variant unsupported)."""
        return (self.verdict == FAILED and self.current_status != UNAVAILABLE
                and self.baseline_status in (OK, None))


@dataclass(frozen=True)
class Comparison:
    """All verdicts of one baseline/current pair, plus the environment warnings."""

    baseline_id: str
    current_id: str
    policy: Policy
    cases: tuple[CaseComparison, ...]
    warnings: tuple[str, ...]
    control_shift: float | None = None  # relative move of the drift control's speed (None: not measured)
    memory_control_shift: float | None = None  # the same for the memory-bound control kernel
    variance_prior: VariancePrior | None = None  # the across-case prior of the round-level variance

    def single_round(self) -> list[CaseComparison]:
        """Cases judged on the samples of one process per side: between-process variation unaccounted for."""
        return [c for c in self.cases if c.timing is not None and not c.timing.between_rounds]

    def caveats(self) -> list[str]:
        """What the reader must know about the strength of the verdicts (empty when nothing)."""
        single = self.single_round()
        if not single:
            return []
        return [
            f"{len(single)} of {sum(c.timing is not None for c in self.cases)} timed case(s) were measured in"
            " one round (one worker process) in at least one run: their test sees only the variation within"
            " a process, not between processes, and can flag a difference of luck as a regression; measure"
            " both runs with --repeat 3 or more"
        ]

    def counts(self) -> dict[str, int]:
        """Cases by verdict on time (and status: failed, missing, new)."""
        found = Counter(c.verdict for c in self.cases)
        return {verdict: found.get(verdict, 0) for verdict in VERDICTS}

    def memory_counts(self) -> dict[str, int]:
        """Cases by verdict on memory (those with a memory figure in both runs)."""
        found = Counter(c.memory_verdict for c in self.cases if c.memory_verdict is not None)
        return {verdict: found.get(verdict, 0) for verdict in MEMORY_VERDICTS}

    def with_verdict(self, verdict: str) -> list[CaseComparison]:
        return [c for c in self.cases if c.verdict == verdict]

    def with_memory_verdict(self, verdict: str) -> list[CaseComparison]:
        return [c for c in self.cases if c.memory_verdict == verdict]

    def failing(self) -> list[CaseComparison]:
        """The regressions that fail CI under the policy's ``fail_on``."""
        time = self.with_verdict(REGRESSED) if TIME_ASPECT in self.policy.fail_on else []
        memory = self.with_memory_verdict(REGRESSED) if MEMORY_ASPECT in self.policy.fail_on else []
        return [c for c in self.cases if c in time or c in memory]

    @property
    def nothing_compared(self) -> bool:
        """No case has a timing in both runs: the runs share no case, or every shared case failed in one of
        them. Such a comparison vouches for nothing, so by default it fails CI like a regression."""
        return all(c.timing is None for c in self.cases)

    def exit_code(self, strict: bool = False, allow_empty: bool = False) -> int:
        """1 when a case regressed in what the policy fails on (time by default; memory too with
        ``fail_on``), or when nothing could be compared (unless ``allow_empty``); with ``strict`` also when a
        case newly failed or went missing."""
        if self.failing():
            return 1
        if self.nothing_compared and not allow_empty:
            return 1
        if strict and (self.with_verdict(MISSING) or any(c.newly_failed for c in self.cases)):
            return 1
        return 0


def classify_ratio(ratio: float, significant: bool, threshold: float) -> str:
    if significant and ratio > 1.0 + threshold:
        return REGRESSED
    if significant and ratio < 1.0 / (1.0 + threshold):
        return IMPROVED
    return UNCHANGED


def _per_round(rounds: Sequence[Memory], single: Memory, metric: str) -> list[float] | None:
    """The readings of ``metric`` in each round (the single reading where a round lacks it); None if none."""
    values = [r.readings()[metric] for r in rounds]
    if len(values) >= 2 and all(v is not None for v in values):
        return [float(v) for v in values if v is not None]
    value = single.readings()[metric]
    return None if value is None else [float(value)]


def memory_changes(baseline: Memory, current: Memory, policy: Policy, baseline_rounds: Sequence[Memory] = (),
                   current_rounds: Sequence[Memory] = ()) -> tuple[MemoryChange, ...]:
    """Every memory reading present in both runs, with its verdict: beyond the threshold and the floor, and,
    with two rounds or more on both sides, beyond the variation between rounds. The first figure of
    :data:`JUDGED_MEMORY` present in both is marked as the one the case's memory verdict rests on."""
    changes = []
    for metric in MEMORY_METRICS:
        base = _per_round(baseline_rounds, baseline, metric)
        cur = _per_round(current_rounds, current, metric)
        if base is None or cur is None:
            continue
        test = readings_change(base, cur, policy.alpha, policy.paired)
        verdict = UNCHANGED
        if abs(test.current - test.baseline) > policy.memory_floor_bytes:
            verdict = classify_ratio(test.ratio, test.significant, policy.memory_threshold)
        changes.append(MemoryChange(metric, round(test.baseline), round(test.current), verdict, test=test))
    present = {c.metric for c in changes}
    judged = next((metric for metric in JUDGED_MEMORY if metric in present), None)
    return tuple(replace(c, judged=c.metric == judged) for c in changes)


def _notes(baseline: CaseResult, current: CaseResult) -> tuple[str, ...]:
    """Facts about the two measurements that may explain a verdict better than the code change does."""
    notes = []
    base_threads, cur_threads = baseline.threads_effective, current.threads_effective
    if base_threads is not None and cur_threads is not None and base_threads != cur_threads:
        notes.append(f"threads in effect differ: {base_threads} (baseline) vs {cur_threads} (current)")
    base_share, cur_share = baseline.cpu_per_wall, current.cpu_per_wall
    if base_share and cur_share and abs(cur_share / base_share - 1.0) > CPU_SHARE_TOLERANCE:
        notes.append(
            f"CPU time per wall time while sampling differs: {base_share:.2f} (baseline) vs {cur_share:.2f}"
            " (current); other processes may have competed for the cores"
        )
    if not (baseline.samples_ms and current.samples_ms):
        notes.append("no timing samples to compare")
    return tuple(notes)


def _compare_ok(baseline: CaseResult, current: CaseResult, policy: Policy,
                prior: VariancePrior | None) -> CaseComparison:
    """Both runs measured the case: judge its timing and memory."""
    timing, timing_verdict = None, None
    if baseline.samples_ms and current.samples_ms:
        timing = rounds_change(baseline.round_samples(), current.round_samples(), policy.alpha, prior,
                               policy.paired, policy.paired_samples)
        timing_verdict = classify_ratio(timing.ratio, timing.significant, policy.threshold)
    memory = memory_changes(baseline.memory, current.memory, policy, baseline.round_memory(),
                            current.round_memory())
    judged = next((m for m in memory if m.judged), None)
    return CaseComparison(
        current.case, timing_verdict or UNCHANGED, OK, OK, timing=timing, timing_verdict=timing_verdict,
        memory=memory, notes=_notes(baseline, current), memory_verdict=None if judged is None else judged.verdict,
    )


def compare_results(
    baseline: CaseResult | None, current: CaseResult | None, policy: Policy,
    prior: VariancePrior | None = None,
) -> CaseComparison:
    """The verdict on one case; at least one of the two results must be given. ``prior``: the across-case
    prior of the round-level variance (:func:`timing_prior`), None for the plain t-test."""
    base_status = baseline.status if baseline is not None else None
    if current is None:
        assert baseline is not None
        return CaseComparison(baseline.case, MISSING, base_status, None)
    if not current.ok:
        errors = (current.error,) if current.error else ()
        return CaseComparison(current.case, FAILED, base_status, current.status, notes=errors)
    if baseline is None or not baseline.ok:
        reason = (f"baseline status: {base_status}",) if base_status else ()
        return CaseComparison(current.case, NEW, base_status, OK, notes=reason)
    return _compare_ok(baseline, current, policy, prior)


def timing_prior(pairs: Iterable[tuple[CaseResult | None, CaseResult | None]],
                 policy: Policy) -> VariancePrior | None:
    """The across-case prior of the round-level variance, fitted on every case timed in both runs (None
    with ``policy.round_test`` PLAIN_T, or too few cases measured in rounds on both sides)."""
    if policy.round_test != MODERATED:
        return None
    timed = [(b.round_samples(), c.round_samples()) for b, c in pairs
             if b is not None and c is not None and b.ok and c.ok and b.samples_ms and c.samples_ms]
    return round_prior(timed, policy.paired, policy.paired_samples)


def compare_runs(baseline: RunRecord, current: RunRecord, policy: Policy) -> Comparison:
    """Match both runs' cases by key and judge each; keys in only one run are ``new`` or ``missing``.

    When both runs measured the drift control, the move of each kernel is reported, and beyond the
    tolerance every timed case is marked with the move of the kernel that fits it; with
    ``policy.normalize_control`` the current times are first scaled by it (:mod:`dlbench.regress.normalize`).
    """
    shifts = {COMPUTE: control_shift(baseline, current, COMPUTE), MEMORY: control_shift(baseline, current, MEMORY)}
    shift = shifts[COMPUTE]
    if policy.normalize_control:
        current = normalized(baseline, current, shifts)
    base_by_key = {r.case.key: r for r in baseline.results}
    cur_by_key = {r.case.key: r for r in current.results}
    keys = sorted(set(base_by_key) | set(cur_by_key))
    prior = timing_prior([(base_by_key.get(k), cur_by_key.get(k)) for k in keys], policy)
    cases = tuple(compare_results(base_by_key.get(k), cur_by_key.get(k), policy, prior) for k in keys)
    frameworks = {c.case.framework for c in cases}
    warnings = environment_differences(baseline, current, frameworks)
    moved = {metric: control_warning(value, policy.control_tolerance, metric)
             for metric, value in shifts.items() if value is not None}
    for text in filter(None, moved.values()):
        warnings.append(text + ("; current times normalised by the kernel that fits each case"
                                if policy.normalize_control else ""))
    if any(moved.values()):
        ridge = ridge_point(baseline) if shifts[MEMORY] is not None else None
        cases = tuple(_marked(c, base_by_key.get(c.key), ridge, shifts, moved) for c in cases)
    return Comparison(baseline.run_id, current.run_id, policy, cases, tuple(warnings), control_shift=shift,
                      memory_control_shift=shifts[MEMORY], variance_prior=prior)


def _marked(case: CaseComparison, baseline: CaseResult | None, ridge: float | None,
            shifts: dict[str, float | None], moved: dict[str, str | None]) -> CaseComparison:
    """A timed case with the mark of its fitting control kernel, when that kernel moved."""
    if case.timing is None or baseline is None:
        return case
    metric = fitting_kernel(baseline, ridge)
    shift = shifts.get(metric)
    if not moved.get(metric) or shift is None:
        return case
    return replace(case, notes=(*case.notes, case_mark(shift, metric)))
