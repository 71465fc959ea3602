"""Put every implementation of a workload phase side by side with the NumPy reference and decide.

Checks per target (workload phase):

* the reference's trainable parameter count and counted MACs against ``docs/workloads.md`` (Workload);
* each implementation's ``trainable_params`` against the canonical count;
* output, loss and every gradient of each implementation against the reference, and of each pair of
  implementations against each other, within the workload's float32 tolerance.

Every side is computed from the same verification weights: the canonical initial weights, with seeded
non-zero biases in the default ``random`` bias mode (see :mod:`dlbench.verify.biases`). An implementation
evaluated with another bias mode than the reference's is an error, not a comparison.

A failure line names the tensor and the culprit: when one implementation disagrees with the reference and
the others agree, that implementation is the culprit, and pair failures that merely repeat it are not
listed again (they stay visible in the table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from dlbench.cases.precision import get_precision, kept_float32, round_to_precision
from dlbench.formatting import one_line
from dlbench.frameworks.base import Evaluation
from dlbench.record.results import OK, UNAVAILABLE
from dlbench.verify.biases import DEFAULT_BIASES, check_bias_mode
from dlbench.verify.collect import ERROR, ImplResult, Target, build_request
from dlbench.verify.compare import TensorError, compare_evaluations, failures
from dlbench.verify.reference import NOISE_FACTOR, NoReference, Reference, reference_evaluate
from dlbench.verify.tolerances import FLOAT32_BITS, Tolerance, tolerance_for
from dlbench.workloads import PASSES, get_plugin, get_workload
from dlbench.workloads.registry import pass_flops

REFERENCE = "numpy/reference"
PASS, FAIL, VERDICT_ERROR = "pass", "fail", "error"
MAX_TENSORS_NAMED = 3


@dataclass(frozen=True)
class PairComparison:
    """Implementation ``a`` against ``b`` (``b`` is the reference when one side is)."""

    a: str
    b: str
    errors: tuple[TensorError, ...]

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.errors)

    @property
    def involves_reference(self) -> bool:
        return REFERENCE in (self.a, self.b)


@dataclass(frozen=True)
class TargetReport:
    """Everything verify found out about one workload phase; the verdict is derived, never stored."""

    target: Target
    batch_size: int
    tolerance: Tolerance
    canonical_params: int
    canonical_macs: int  # per sample, from docs/workloads.md / definitions.py
    reference_params: int | None  # counted from the reference's gradients
    reference_macs: int | None  # counted by the reference while it computed
    reference_error: str
    implementations: tuple[ImplResult, ...]
    comparisons: tuple[PairComparison, ...]
    problems: tuple[str, ...]  # every failure, one line each, naming the tensor and the culprit
    notes: tuple[str, ...]  # unavailable variants and other things worth a line that are not failures
    near_ties: tuple[int, int] | None = None  # (found, used) ambiguous ReLU/max-pool decisions, if analysed

    @property
    def canonical_flops(self) -> dict[str, float]:
        """2 * MACs * batch for the forward pass; the documented 3x convention for the gradient pass."""
        t = self.target
        return {p: pass_flops(t.workload, t.phase, p, self.batch_size) for p in PASSES}

    @property
    def verdict(self) -> str:
        """``fail`` on any wrong number, ``error`` when something could not be checked, else ``pass``."""
        if self._count_problem or any(not c.ok for c in self.comparisons):
            return FAIL
        if self.reference_error or any(i.status == ERROR for i in self.implementations):
            return VERDICT_ERROR
        return PASS

    @property
    def _count_problem(self) -> bool:
        if self.reference_params is not None and self.reference_params != self.canonical_params:
            return True
        if self.reference_macs is not None and self.reference_macs != self.canonical_macs:
            return True
        return any(i.trainable_params not in (None, self.canonical_params) for i in self.implementations)


@dataclass(frozen=True)
class VerifyReport:
    """The whole run: one report per workload phase and the overall verdict and exit code."""

    targets: tuple[TargetReport, ...]
    batch_size: int
    seed: int
    device: str
    notes: tuple[str, ...] = ()  # about the selection as a whole (skipped frameworks, nothing installed)
    biases: str = DEFAULT_BIASES  # the bias mode of the verification weights (see dlbench.verify.biases)
    precision: str = "float32"  # of every implementation; the tolerances are derived for it

    @property
    def verdict(self) -> str:
        verdicts = {t.verdict for t in self.targets}
        for verdict in (FAIL, VERDICT_ERROR):
            if verdict in verdicts:
                return verdict
        return PASS

    @property
    def exit_code(self) -> int:
        """0 when everything agrees; 1 on any mismatch or any implementation that could not be checked."""
        return 0 if self.verdict == PASS else 1


def compute_reference(target: Target, batch_size: int, seed: int, biases: str = DEFAULT_BIASES,
                      precision: str = "float32") -> Reference:
    """The float64 reference. For a low precision its operands (weights and input features) are first
    rounded to that precision, exactly as every framework's casts round them (see
    :func:`dlbench.cases.precision.round_to_precision`), except the parameters the recipe keeps in float32."""
    request = build_request(target, "reference", batch_size, seed, "cpu", biases)
    weights = {name: value if kept_float32(target.workload, name) else round_to_precision(value, precision)
               for name, value in request.weights.items()}
    batch = replace(request.batch, x=round_to_precision(request.batch.x, precision))
    return reference_evaluate(target.workload, target.phase, batch, weights, precision=precision)


def verify_target(
    target: Target,
    implementations: Sequence[ImplResult],
    batch_size: int,
    seed: int = 0,
    reference: Reference | None = None,
    biases: str = DEFAULT_BIASES,
    precision: str = "float32",
) -> TargetReport:
    """Compare ``implementations`` of ``target`` with the reference (computed here from the verification
    weights of bias mode ``biases`` unless given)."""
    check_bias_mode(biases)
    workload = get_workload(target.workload)
    tolerance = tolerance_for(target.workload, precision)
    implementations = [_same_biases(i, biases) for i in implementations]
    reference_error = ""
    cross_note = ""
    if reference is None:
        try:
            reference = compute_reference(target, batch_size, seed, biases, precision)
        except NoReference as exc:
            if not get_plugin(target.workload).cross_check:
                reference_error = f"NumPy reference failed: {one_line(exc)}"
            else:  # a Keras model of its own: its backends against each other
                cross_note = str(exc)
        except Exception as exc:  # noqa: BLE001 - a reference bug is reported, not raised
            reference_error = f"NumPy reference failed: {one_line(exc)}"
    evaluated = [
        (i.label, i.evaluation) for i in implementations if i.status == OK and i.evaluation is not None
    ]
    if cross_note and len(evaluated) < 2:
        reference_error = f"{cross_note}, and fewer than two were evaluated: nothing was compared"
    sides = ([(REFERENCE, reference.evaluation)] if reference is not None else []) + evaluated
    allowance = scaled_allowance(reference.allowance, precision) if reference is not None else {}
    comparisons = compare_pairs(sides, tolerance, allowance)
    canonical_params = workload.trainable_params(target.phase)
    canonical_macs = workload.macs(target.phase)
    ref_params = sum(g.size for g in reference.evaluation.gradients.values()) if reference else None
    ref_macs = reference.macs_per_sample if reference else None
    problems = _count_problems(canonical_params, canonical_macs, ref_params, ref_macs, implementations)
    problems += [reference_error] if reference_error else []
    problems += [f"{i.label}: {i.error}" for i in implementations if i.status == ERROR]
    problems += _comparison_problems(comparisons)
    notes = [f"{i.label}: unavailable ({i.error})" for i in implementations if i.status == UNAVAILABLE]
    notes += [cross_note] if cross_note else []
    if not evaluated:
        notes.append("no framework implementation was evaluated: only the reference's counts were checked")
    ties = reference.ties if reference is not None else None
    if ties is not None and ties.found:
        notes.append(_ties_note(ties.found, ties.used))
    return TargetReport(
        target=target,
        batch_size=batch_size,
        tolerance=tolerance,
        canonical_params=canonical_params,
        canonical_macs=canonical_macs,
        reference_params=ref_params,
        reference_macs=ref_macs,
        reference_error=reference_error,
        implementations=tuple(implementations),
        comparisons=comparisons,
        problems=tuple(problems),
        notes=tuple(notes),
        near_ties=(ties.found, ties.used) if ties is not None else None,
    )


def _same_biases(impl: ImplResult, biases: str) -> ImplResult:
    """An implementation given other weights than the reference computes another function: comparing it
    would blame it for a wiring mistake of the caller, so it becomes an error that says so."""
    if impl.biases == biases or impl.status != OK:
        return impl
    message = f"evaluated with {impl.biases} biases, the reference with {biases} biases"
    return replace(impl, status=ERROR, error=message, evaluation=None)


def compare_pairs(
    sides: Sequence[tuple[str, Evaluation]], tolerance: Tolerance, allowance: Mapping[str, np.ndarray]
) -> tuple[PairComparison, ...]:
    """With the reference (first, when present): every implementation against it, and every later one against
    the first implementation, so that one framework is also set directly against the others. Two
    implementations that each agree with the reference agree with each other within twice its allowance,
    so the remaining pairs say nothing new, and there are many of them: ``--conv all`` over every variant
    of three frameworks makes some sixty implementations of AlexNet, whose every pair (some two thousand
    comparisons of sixty million gradients) would cost more than evaluating them. Without a reference (it
    failed), every pair: mutual agreement is then all there is to say, and it names the odd one out. Two
    frameworks may each sit on either side of the reference: their mutual allowance is twice as wide."""
    doubled = {name: 2.0 * value for name, value in allowance.items()}
    if sides and sides[0][0] == REFERENCE:
        reference, implementations = sides[0], sides[1:]
        chosen = [(reference, side) for side in implementations]
        chosen += [(implementations[0], side) for side in implementations[1:]]
    else:
        chosen = list(combinations(sides, 2))
    pairs = []
    for (b_label, b_eval), (a_label, a_eval) in chosen:
        allow = allowance if b_label == REFERENCE else doubled
        pairs.append(
            PairComparison(a_label, b_label, tuple(compare_evaluations(a_eval, b_eval, tolerance, allow)))
        )
    return tuple(pairs)


def _ties_note(found: int, used: int) -> str:
    text = (
        f"{found} ReLU/max-pool decisions of the reference lie within float32 rounding of a tie; "
        "their exact gradient effect widens the gradient allowance"
    )
    if used < found:
        text += f" (only the closest {used} were analysed: a smaller --batch-size analyses all)"
    return text


def verify_all(
    targets: Sequence[Target],
    implementations: Sequence[ImplResult],
    batch_size: int,
    seed: int = 0,
    device: str = "cpu",
    notes: Sequence[str] = (),
    biases: str = DEFAULT_BIASES,
    precision: str = "float32",
) -> VerifyReport:
    """One :class:`TargetReport` per target, from implementations of any framework mix, against the
    reference computed from the verification weights of bias mode ``biases``; tolerances for ``precision``."""
    reports = []
    for target in targets:
        mine = [i for i in implementations if i.target == target]
        reports.append(verify_target(target, mine, batch_size, seed, biases=biases, precision=precision))
    return VerifyReport(tuple(reports), batch_size, seed, device, tuple(notes), biases, precision)


def scaled_allowance(allowance: Mapping[str, np.ndarray], precision: str) -> dict[str, np.ndarray]:
    """The reference's float32 allowance, for ``precision``. Its noise part is rounding error, which scales
    with the unit roundoff: for a low precision it is widened by u(precision) / u(float32) (65,536 for bf16)
    and stripped of NOISE_FACTOR, the margin for float32 implementations that round a few times worse than
    NumPy (under mixed precision the operand roundings, the same in every framework, dominate). A tensor
    that is a near-cancelling sum in float32 is then below the low precision's resolution and is, rightly,
    hardly judged; every other tensor keeps a budget of a few u. The near-tie envelope is scaled with it."""
    recipe = get_precision(precision)
    if recipe.significand_bits >= FLOAT32_BITS:
        return dict(allowance)
    factor = recipe.unit_roundoff / get_precision("float32").unit_roundoff / NOISE_FACTOR
    return {name: value * factor for name, value in allowance.items()}


def _count_problems(
    canonical_params: int,
    canonical_macs: int,
    ref_params: int | None,
    ref_macs: int | None,
    implementations: Sequence[ImplResult],
) -> list[str]:
    problems = []
    if ref_params is not None and ref_params != canonical_params:
        problems.append(
            f"NumPy reference trains {ref_params:,} parameters, docs/workloads.md says {canonical_params:,}"
        )
    if ref_macs is not None and ref_macs != canonical_macs:
        problems.append(
            f"NumPy reference counted {ref_macs:,} MACs per sample, docs/workloads.md says {canonical_macs:,}"
        )
    for impl in implementations:
        if impl.trainable_params is not None and impl.trainable_params != canonical_params:
            problems.append(
                f"{impl.label}: {impl.trainable_params:,} trainable parameters, "
                f"docs/workloads.md says {canonical_params:,}"
            )
    return problems


def _comparison_problems(comparisons: Sequence[PairComparison]) -> list[str]:
    """Failure lines: implementations that disagree with the reference first (they are the culprits), then
    pairs of implementations that disagree although neither disagrees with the reference."""
    culprits = set()
    lines = []
    for pair in comparisons:
        if pair.involves_reference and not pair.ok:
            culprit = pair.a if pair.b == REFERENCE else pair.b
            culprits.add(culprit)
            lines.append(f"{culprit} disagrees with the NumPy reference: {_name_tensors(pair)}")
    with_reference = [p for p in comparisons if p.involves_reference]
    if with_reference and culprits and len(culprits) == len(with_reference) and len(with_reference) > 1:
        pair_ok = all(p.ok for p in comparisons if not p.involves_reference)
        if pair_ok:
            lines.append(
                "all implementations agree with each other but not with the NumPy reference: "
                "check the reference against docs/workloads.md"
            )
    for pair in comparisons:
        if not pair.involves_reference and not pair.ok and not {pair.a, pair.b} & culprits:
            lines.append(f"{pair.a} and {pair.b} disagree: {_name_tensors(pair)}")
    return lines


def _name_tensors(pair: PairComparison) -> str:
    bad = failures(pair.errors)
    named = ", ".join(e.describe() for e in bad[:MAX_TENSORS_NAMED])
    more = len(bad) - MAX_TENSORS_NAMED
    return named + (f" and {more} more" if more > 0 else "")
