"""Turn a baseline run and a current run into per-case verdicts and a CI exit code.

Cases are matched by their stable :attr:`dlbench.cases.spec.Case.key`. A case is **regressed** when its timing
is slower both *significantly* (see :mod:`dlbench.statistics.significance`) and by more than the threshold,
or when one of its memory readings grew beyond the memory threshold. Requiring both for timing is what
keeps a noisy CI machine quiet: significance alone flags 1% shifts that nobody cares about when there are
many samples, the threshold alone flags noise when there are few.

Memory is a single reading per case (a peak), so there is no sample to test: a memory reading regresses
when it grew by more than the relative ``memory_threshold`` *and* by more than ``memory_floor_bytes``
(a few MiB of page-granular allocator slack is not a regression, even when the rise itself is small).
Improvements are the mirror image: faster by more than ``1 - 1/(1 + threshold)`` (symmetric in log
space: undoing a 5% slow-down counts as a 5% improvement).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from dlbench.cases.spec import Case
from dlbench.record.results import MEMORY_METRICS, OK, UNAVAILABLE, CaseResult, Memory
from dlbench.record.store import RunRecord
from dlbench.regress.env_diff import environment_differences
from dlbench.regress.normalize import case_mark, control_shift, control_warning, fitting_kernel, normalized, ridge_point
from dlbench.runner.drift import COMPUTE, MEMORY
from dlbench.statistics.moderated import VariancePrior
from dlbench.statistics.significance import TimingChange, round_prior, rounds_change

REGRESSED = "regressed"
IMPROVED = "improved"
UNCHANGED = "unchanged"
NEW = "new"
MISSING = "missing"
FAILED = "failed"
VERDICTS = (REGRESSED, FAILED, IMPROVED, MISSING, NEW, UNCHANGED)  # also the display order

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


@dataclass(frozen=True)
class MemoryChange:
    """One memory reading (bytes) of a case in both runs."""

    metric: str  # one of MEMORY_METRICS
    baseline: int
    current: int
    verdict: str  # REGRESSED, IMPROVED or UNCHANGED

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
        found = Counter(c.verdict for c in self.cases)
        return {verdict: found.get(verdict, 0) for verdict in VERDICTS}

    def with_verdict(self, verdict: str) -> list[CaseComparison]:
        return [c for c in self.cases if c.verdict == verdict]

    @property
    def nothing_compared(self) -> bool:
        """No case has a timing in both runs: the runs share no case, or every shared case failed in one of
        them. Such a comparison vouches for nothing, so by default it fails CI like a regression."""
        return all(c.timing is None for c in self.cases)

    def exit_code(self, strict: bool = False, allow_empty: bool = False) -> int:
        """1 when a case regressed, or when nothing could be compared (unless ``allow_empty``); with
        ``strict`` also when a case newly failed or went missing."""
        if self.with_verdict(REGRESSED):
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


def memory_changes(baseline: Memory, current: Memory, policy: Policy) -> tuple[MemoryChange, ...]:
    """Every memory reading present in both runs, with its verdict (threshold and floor, no test)."""
    base_values, cur_values = baseline.readings(), current.readings()
    changes = []
    for metric in MEMORY_METRICS:
        base, cur = base_values[metric], cur_values[metric]
        if base is None or cur is None:
            continue
        verdict = UNCHANGED
        if abs(cur - base) > policy.memory_floor_bytes:
            verdict = classify_ratio(cur / base if base > 0 else float("inf"), True, policy.memory_threshold)
        changes.append(MemoryChange(metric, base, cur, verdict))
    return tuple(changes)


def _overall(verdicts: Iterable[str]) -> str:
    found = set(verdicts)
    if REGRESSED in found:
        return REGRESSED
    return IMPROVED if IMPROVED in found else UNCHANGED


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
    memory = memory_changes(baseline.memory, current.memory, policy)
    verdicts = [m.verdict for m in memory] + ([timing_verdict] if timing_verdict else [])
    return CaseComparison(
        current.case, _overall(verdicts), OK, OK, timing=timing, timing_verdict=timing_verdict,
        memory=memory, notes=_notes(baseline, current),
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
