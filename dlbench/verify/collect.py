"""Evaluate one adapter on the verification targets, in the current process.

This is the only place that drives an adapter for ``verify``: the isolated worker
(:mod:`dlbench.verify.job`) calls it inside its own process, and tests call it directly with a
deliberately broken adapter. Every failure (import, build, evaluate) becomes an ``error`` result with a
one-line message, so that one broken framework never hides the verdict on the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from dlbench.cases.spec import NATIVE_CONV
from dlbench.formatting import one_line
from dlbench.frameworks.base import Adapter, BuildRequest, CaseUnavailable, Evaluation, ParamCountError
from dlbench.record.results import OK, UNAVAILABLE
from dlbench.verify.biases import DEFAULT_BIASES, check_bias_mode, verification_weights
from dlbench.workloads import PASSES, get_workload, make_batch

ERROR = "error"  # the framework failed to import, build or evaluate (OK and UNAVAILABLE as in a run)


@dataclass(frozen=True, order=True)
class Target:
    """One workload phase to verify (``phase`` is "" for single-phase workloads)."""

    workload: str
    phase: str = ""

    @property
    def label(self) -> str:
        return f"{self.workload}/{self.phase}" if self.phase else self.workload


@dataclass(frozen=True)
class ImplResult:
    """What one implementation (framework + variant + convolution algorithm) produced for one target."""

    framework: str
    variant: str
    target: Target
    status: str  # OK | ERROR | UNAVAILABLE
    error: str = ""
    evaluation: Evaluation | None = None
    trainable_params: int | None = None
    framework_flops: dict[str, float | None] = field(default_factory=dict)  # pass -> FLOPs or None
    version: str = ""
    biases: str = DEFAULT_BIASES  # the bias mode of the weights it was given (see dlbench.verify.biases)
    affinity: tuple[int, ...] = ()  # the cores the evaluating process was pinned to (set by the worker)
    conv: str = NATIVE_CONV  # the convolution algorithm (dlbench.cases.spec.CONV_ALGORITHMS)
    traits: dict[str, str] = field(default_factory=dict)  # BuiltCase.traits(): what really ran

    @property
    def label(self) -> str:
        """``torch/eager``, or ``torch/eager/fft`` for another convolution algorithm than native."""
        base = f"{self.framework}/{self.variant}"
        return base if self.conv == NATIVE_CONV else f"{base}/{self.conv}"


def build_request(
    target: Target, variant: str, batch_size: int, seed: int, device: str, biases: str = DEFAULT_BIASES,
    precision: str = "float32",
    conv: str = NATIVE_CONV,
) -> BuildRequest:
    """The verification weights (canonical, biases per ``biases``) and the canonical batch of ``target``,
    with dropout off: every implementation and the reference then compute the same deterministic function."""
    return BuildRequest(
        workload=get_workload(target.workload),
        phase=target.phase,
        batch=make_batch(target.workload, batch_size, seed),
        weights=verification_weights(target.workload, seed, biases),
        variant=variant,
        device=device,
        precision=precision,
        dropout=False,
        conv=conv,
    )


def evaluate_case(
    adapter: Adapter,
    target: Target,
    variant: str,
    batch_size: int,
    seed: int,
    device: str,
    version: str = "",
    biases: str = DEFAULT_BIASES,
    precision: str = "float32",
    conv: str = NATIVE_CONV,
) -> ImplResult:
    """Build one case, evaluate it and read its counts; never raises for a framework failure. A precision
    the built case does not really compute in (see ``base.check_precision``) is unavailable, as in a run."""
    base = ImplResult(adapter.name, variant, target, ERROR, version=version, biases=biases, conv=conv)
    try:
        request = build_request(target, variant, batch_size, seed, device, biases, precision, conv)
        built = adapter.build(request)  # the base class checks the dtypes against the precision
    except CaseUnavailable as exc:
        return replace(base, status=UNAVAILABLE, error=one_line(exc))
    except ParamCountError as exc:  # the adapter base's check: the verdict shows it as a wrong count
        return replace(base, error=f"build failed: {one_line(exc)}", trainable_params=exc.built)
    except Exception as exc:  # noqa: BLE001 - any framework failure is a result, not a crash
        return replace(base, error=f"build failed: {one_line(exc)}")
    try:
        evaluation = built.evaluate()
        params = int(built.trainable_params)
        flops = {pass_: _optional_flops(built.framework_flops, pass_) for pass_ in PASSES}
        traits = dict(built.traits())
    except Exception as exc:  # noqa: BLE001
        return replace(base, error=f"evaluate failed: {one_line(exc)}")
    finally:
        _close_quietly(built)
    return replace(base, status=OK, evaluation=evaluation, trainable_params=params, framework_flops=flops,
                   traits=traits)


def evaluate_adapter(
    adapter: Adapter,
    targets: Sequence[Target],
    variants: Sequence[str],
    batch_size: int,
    seed: int = 0,
    device: str = "cpu",
    threads: int = 1,
    on_result: Callable[[ImplResult], None] | None = None,
    biases: str = DEFAULT_BIASES,
    precision: str = "float32",
    convs: Sequence[str] = (NATIVE_CONV,),
) -> list[ImplResult]:
    """Initialise ``adapter`` in this process and evaluate every (variant, target, convolution algorithm)
    with the verification weights of bias mode ``biases``; the algorithms apply to the targets that have
    convolutions (see :func:`target_convs`). ``on_result`` sees each result as soon as it exists (the worker writes it
    to disk, so a later crash loses nothing)."""
    check_bias_mode(biases)  # a wrong mode is the caller's bug, not a framework failure of every case
    results: list[ImplResult] = []

    def emit(result: ImplResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    try:
        info = adapter.initialize(device, threads)
    except Exception as exc:  # noqa: BLE001 - a broken install is a verdict line
        for variant in variants:
            for target in targets:
                for conv in target_convs(target, convs):
                    message = f"initialize failed: {one_line(exc)}"
                    emit(ImplResult(adapter.name, variant, target, ERROR, message, biases=biases, conv=conv))
        return results
    for variant in variants:
        for target in targets:
            if not adapter.applies(variant, target.workload):
                continue  # a variant made for other workloads (e.g. an attention implementation)
            for conv in target_convs(target, convs):
                emit(evaluate_case(adapter, target, variant, batch_size, seed, device, info.version, biases,
                                   precision, conv))
    return results


def target_convs(target: Target, convs: Sequence[str]) -> tuple[str, ...]:
    """The convolution algorithms to verify ``target`` with: ``convs`` where it has convolutions, else
    only native (an LSTM has no convolution to compute another way)."""
    return tuple(convs) if get_workload(target.workload).has_convolutions else (NATIVE_CONV,)


def _optional_flops(method: Callable[[str], float | None], pass_: str) -> float | None:
    """The framework's own FLOP count is informational: a failure to count must not fail verification."""
    try:
        value = method(pass_)
    except Exception:  # noqa: BLE001
        return None
    return None if value is None else float(value)


def _close_quietly(built: object) -> None:
    close = getattr(built, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # noqa: BLE001 - releasing memory is best effort
        pass
