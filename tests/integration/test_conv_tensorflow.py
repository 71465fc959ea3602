"""Integration tests of TensorFlow's convolution algorithms (``--conv``: native, im2col, fft, direct) and of the
TensorFlow library-switch variants (``eigen``, ``no_autotune``, ``deterministic``).

As in ``test_tensorflow_adapter.py``, TensorFlow runs only in child processes (this file run as a script:
``python test_conv_tensorflow.py child MODE OUTDIR``), which save arrays and records to OUTDIR; the tests read
them. The pytest process never imports TensorFlow (its thread pools are fixed once per process, and the
adapter blocks the JAX import). Three children: ``main`` (a default worker: oneDNN on), ``eigen`` (the
environment of the ``eigen`` variant's own worker, ``Adapter.process_env``) and ``deterministic`` (that
variant's environment; the variant is GPU-only, so its CPU child checks the switch and the seeding only).

Tolerances, as the error relative to the compared tensor's largest magnitude (:func:`scaled_error`):

* float32, im2col and direct against native: :data:`F32_TOL` = 2e-5. The algorithms sum the same products in
  another order, so they differ from native by float32 rounding of sums of up to k*k*Cin = 3,456 terms
  (forward) and N*OH*OW = 6,050 terms (kernel gradients): measured at most 4e-6 on the LeNet and AlexNet
  layers and networks, 5e-7 on the small shapes, so 2e-5 leaves a 5x margin and is still 10,000 times below
  the O(1) errors of a wrong algorithm (the mutation tests).
* float32, fft: :data:`FFT_TOL` = 5e-5. Its rounding comes from the transforms (O(eps log(HW)) of the spectra's
  magnitude) as well as the channel sums; measured at most 3.9e-6 (AlexNet conv1's kernel gradient) and
  2.4e-6 for an output (AlexNet conv5).
* bf16, every algorithm and native against float32 native: :data:`BF16_TOL` = 3e-2, about four bf16 roundings
  (2^-7 each) of the tensor's scale. Outputs, kernel and bias gradients measured 2.2e-3 to 3.8e-3 for every
  algorithm (native's own), input gradients 3.7e-3 to 4.1e-3 for native and fft, 8.4e-3 for direct (its k*k
  shifted window gradients added in bf16) and 1.6e-2 for im2col (its gradient, col2im, sums the k*k
  overlapping patch gradients of each pixel in bf16: TF's ``unsorted_segment_sum`` in the case's dtype).
* Layer and network cases against the float64 NumPy reference: :data:`REFERENCE_TOL` = 2e-4 (as in
  ``test_tensorflow_adapter.py``); the loss to :data:`LOSS_RTOL`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dlbench.frameworks.base import Evaluation
from dlbench.workloads import LAYER_WORKLOADS, get_workload, initial_weights, make_batch

pytestmark = pytest.mark.integration

if importlib.util.find_spec("tensorflow") is None:  # find_spec does not import TensorFlow
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

THREADS = 2
CHILD_TIMEOUT_S = 900
ALGORITHMS = ("im2col", "fft", "direct")
ALL_ALGORITHMS = ("native", *ALGORITHMS)
F32_TOL = 2e-5
FFT_TOL = 5e-5
BF16_TOL = 3e-2
REFERENCE_TOL = 2e-4
LOSS_RTOL = 1e-5
# (H, W, Cin, Cout, k, stride, padding): odd and even sizes, non-square inputs, stride 1/2/4, padding 0/1/2,
# k 1/3/4/5, a single input channel
SHAPES: tuple[tuple[int, int, int, int, int, int, int], ...] = (
    (7, 9, 3, 4, 3, 1, 1),
    (11, 11, 2, 5, 5, 2, 2),
    (13, 10, 3, 2, 1, 1, 0),
    (17, 15, 3, 4, 5, 4, 0),
    (9, 9, 1, 3, 3, 2, 1),
    (12, 11, 4, 4, 4, 2, 1),
    (15, 15, 2, 3, 3, 4, 2),
)
SHAPE_IDS = [f"{h}x{w}c{cin}-k{k}s{stride}p{padding}" for h, w, cin, _, k, stride, padding in SHAPES]
SMALL_VARIANTS = ("function", "xla", "eager")
QUANTITIES = ("y", "dx", "dkernel", "dbias")
# (workload, batch size, variants): AlexNet at batch 1 and on the default variant only (XLA-compiling its
# gradient costs ~10 s per algorithm); every layer benchmark on the default variant, three also under XLA and
# eagerly (LeNet's two and AlexNet's stride-1 3x3 conv3; conv1's stride 4 is covered by the small shapes).
NETWORK_CASES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("lenet", 2, SMALL_VARIANTS),
    ("alexnet", 1, ("function",)),
    *((name, 2, SMALL_VARIANTS if name in ("conv:lenet.conv1", "conv:lenet.conv2", "conv:alexnet.conv3")
       else ("function",)) for name in LAYER_WORKLOADS),
)
BF16_LAYERS = ("conv:lenet.conv2", "conv:alexnet.conv2")  # one layer of each network
BIG = 2_000_000  # gradients with more elements (AlexNet's fc kernels) are compared in the child


def scaled_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| relative to max |expected|: float32 rounding relative to the tensor's scale, so
    that entries near zero do not dominate."""
    if actual.shape != expected.shape:
        return float("inf")
    scale = max(float(np.max(np.abs(expected))), 1e-30)
    return float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)))) / scale


def tolerance(algorithm: str) -> float:
    return FFT_TOL if algorithm == "fft" else F32_TOL


# ==================================================================================================
# Child side: the only code that imports TensorFlow.
# ==================================================================================================


def _small_inputs(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w, cin, cout, k, _, _ = SHAPES[index]
    rng = np.random.default_rng(index)
    return (rng.random((2, h, w, cin), dtype=np.float32),
            (rng.standard_normal((k, k, cin, cout)) * 0.3).astype(np.float32),
            rng.standard_normal(cout).astype(np.float32))


def _small_child(tf: Any, arrays: dict[str, np.ndarray]) -> None:
    """Every algorithm (and two wrong ones) on the small shapes: output and input, kernel, bias gradients."""
    from dlbench.frameworks.tensorflow.convolution import conv2d

    def run(index: int, variant: str, algorithm: str, wrong: str = "") -> list[np.ndarray]:
        _, _, _, _, k, stride, padding = SHAPES[index]
        out_h = (SHAPES[index][0] + 2 * padding - k) // stride + 1
        out_w = (SHAPES[index][1] + 2 * padding - k) // stride + 1

        def pass_(x: Any, kernel: Any, bias: Any) -> list[Any]:
            with tf.GradientTape() as tape:
                tape.watch([x, kernel, bias])
                if wrong == "flipped":  # cross-correlation computed as a convolution (FFT without conj)
                    y = conv2d(tf, x, tf.reverse(kernel, [0, 1]), bias, stride, padding, algorithm)
                elif wrong == "padding":  # one zero too many on each side, cropped back to the right size
                    y = conv2d(tf, x, kernel, bias, stride, padding + 1, algorithm)[:, :out_h, :out_w, :]
                else:
                    y = conv2d(tf, x, kernel, bias, stride, padding, algorithm)
                loss = tf.reduce_sum(tf.square(y)) / 2.0
            return [y, *tape.gradient(loss, [x, kernel, bias])]

        fn: Callable[..., Any] = pass_
        if variant != "eager":
            fn = tf.function(pass_, autograph=False, jit_compile=variant == "xla")
        return [t.numpy() for t in fn(*(tf.constant(a) for a in _small_inputs(index)))]

    for index in range(len(SHAPES)):
        for variant in SMALL_VARIANTS:
            for algorithm in ALL_ALGORITHMS:
                for name, value in zip(QUANTITIES, run(index, variant, algorithm), strict=True):
                    arrays[f"small|{index}|{variant}|{algorithm}|{name}"] = value
        for algorithm in ALGORITHMS:
            for wrong in ("flipped", "padding"):
                for name, value in zip(QUANTITIES, run(index, "function", algorithm, wrong), strict=True):
                    arrays[f"wrong|{index}|{wrong}|{algorithm}|{name}"] = value


def _evaluate_case(adapter: Any, workload: str, batch_size: int, variant: str, conv: str,
                   precision: str = "float32") -> tuple[Evaluation, dict[str, Any], list[np.ndarray]]:
    """Build one case through the adapter; its evaluation, its record (traits, dtypes, gradient-pass shapes)
    and, for a layer benchmark, the gradient pass's outputs (kernel, bias and input gradients)."""
    from dlbench.frameworks.base import BuildRequest

    request = BuildRequest(get_workload(workload), "", make_batch(workload, batch_size), initial_weights(workload),
                           variant, "cpu", precision=precision, dropout=False, conv=conv)
    case = adapter.build(request)
    try:
        evaluation = case.evaluate()
        record = {"traits": case.traits(), "dtypes": case.dtypes(), "loss": evaluation.loss}
        passes: list[np.ndarray] = []
        if get_workload(workload).is_layer:
            handle = case.prepare("gradient")()
            passes = [np.asarray(g.numpy()) for g in handle]
            record["gradient_pass_shapes"] = [list(p.shape) for p in passes]
    finally:
        case.close()
    return evaluation, record, passes


def _save_case(key: str, evaluation: Evaluation, passes: list[np.ndarray], arrays: dict[str, np.ndarray],
               native: Evaluation | None, record: dict[str, Any]) -> None:
    arrays[f"{key}|output"] = evaluation.output
    for name, grad in evaluation.gradients.items():
        if grad.size <= BIG:
            arrays[f"{key}|grad|{name}"] = grad
        elif native is not None:  # compared here: 250 MB of AlexNet gradients per case stay in the child
            record.setdefault("big_errors", {})[name] = scaled_error(grad, native.gradients[name])
    if passes:
        arrays[f"{key}|dx"] = passes[-1]


def _mutant_fft(tf: Any, padded: Any, kernel: Any, stride: int) -> Any:
    """The FFT algorithm with the classic bug: the product with the kernel spectrum itself, not its conjugate
    (a convolution, i.e. the kernel flipped)."""
    k = int(kernel.shape[0])
    _, hp, wp, _ = (int(d) for d in padded.shape)
    signal = tf.transpose(tf.cast(padded, tf.float32), [0, 3, 1, 2])
    filters = tf.transpose(tf.cast(kernel, tf.float32), [2, 3, 0, 1])
    filters = tf.pad(filters, [[0, 0], [0, 0], [0, hp - k], [0, wp - k]])
    spectrum = tf.einsum("nchw,cohw->nohw", tf.signal.rfft2d(signal), tf.signal.rfft2d(filters))
    full = tf.signal.irfft2d(spectrum, fft_length=[hp, wp])
    return tf.transpose(full[:, :, : hp - k + 1 : stride, : wp - k + 1 : stride], [0, 2, 3, 1])


def _mutant_pad(tf: Any, x: Any, padding: int) -> Any:
    """Zero padding off by one: one row and column too many on top and left, one too few on bottom and right
    (the output keeps its size, every value is shifted)."""
    return tf.pad(x, [[0, 0], [padding + 1, padding - 1], [padding + 1, padding - 1], [0, 0]])


def _main_child(outdir: Path) -> None:
    from dlbench.frameworks.base import BuildRequest
    from dlbench.frameworks.tensorflow import convolution
    from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter

    adapter = TensorFlowAdapter()
    info = adapter.initialize("cpu", THREADS)
    import tensorflow as tf

    results: dict[str, Any] = {"backends": info.backends, "cases": {}}
    arrays: dict[str, np.ndarray] = {}
    _small_child(tf, arrays)

    for workload, batch_size, variants in NETWORK_CASES:
        for variant in variants:
            native: Evaluation | None = None
            for conv in ALL_ALGORITHMS:
                key = f"net|{workload}|{variant}|{conv}"
                evaluation, record, passes = _evaluate_case(adapter, workload, batch_size, variant, conv)
                native = evaluation if conv == "native" else native
                _save_case(key, evaluation, passes, arrays, native, record)
                results["cases"][key] = record

    from dlbench.frameworks.tensorflow.precision import _precision_problem

    results["bf16_unavailable"] = _precision_problem(tf, "bf16", "cpu")  # a CPU without oneDNN bf16 kernels
    for workload in BF16_LAYERS if results["bf16_unavailable"] is None else ():
        for conv in ALL_ALGORITHMS:
            key = f"bf16|{workload}|{conv}"
            evaluation, record, passes = _evaluate_case(adapter, workload, 2, "function", conv, "bf16")
            _save_case(key, evaluation, passes, arrays, None, record)
            results["cases"][key] = record

    # Wrong algorithms through the adapter, to show that the comparison of the tests below catches them.
    for key, workload, conv, attribute, mutant in (
        ("mutant|fft_no_conj", "conv:lenet.conv2", "fft", "_fft", _mutant_fft),
        ("mutant|pad_shifted", "conv:alexnet.conv3", "direct", "_pad", _mutant_pad),
    ):
        original = getattr(convolution, attribute)
        setattr(convolution, attribute, mutant)
        try:
            evaluation, record, passes = _evaluate_case(adapter, workload, 2, "function", conv)
        finally:
            setattr(convolution, attribute, original)
        _save_case(key, evaluation, passes, arrays, None, record)
        results["cases"][key] = record

    def build_error(workload: str, variant: str, conv: str) -> list[str] | None:
        request = BuildRequest(get_workload(workload), "", make_batch(workload, 2), initial_weights(workload),
                               variant, "cpu", conv=conv)
        try:
            adapter.build(request).close()
        except Exception as exc:  # noqa: BLE001  the parent asserts on the type
            return [type(exc).__name__, str(exc)]
        return None

    results["errors"] = {
        "eigen_with_onednn_on": build_error("lenet", "eigen", "native"),
        "no_autotune_on_cpu": build_error("lenet", "no_autotune", "im2col"),
        "deterministic_on_cpu": build_error("lenet", "deterministic", "native"),
        "fft_without_convolutions": build_error("lstm", "function", "fft"),
        "unknown_algorithm": build_error("lenet", "function", "winograd"),
    }
    np.savez(outdir / "arrays.npz", **arrays)  # type: ignore[arg-type]  # stubs: ** may hit allow_pickle
    (outdir / "results.json").write_text(json.dumps(results))


def _eigen_child(outdir: Path) -> None:
    """A worker with the eigen variant's environment: what it reports, and that it computes the same."""
    from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter

    adapter = TensorFlowAdapter()
    info = adapter.initialize("cpu", THREADS)
    results: dict[str, Any] = {"backends": info.backends, "settings": info.settings, "cases": {}}
    arrays: dict[str, np.ndarray] = {}
    for workload in ("lenet", "conv:lenet.conv2"):
        for variant in ("eigen", "function"):
            for conv in ("native", "im2col", "fft"):
                key = f"net|{workload}|{variant}|{conv}"
                evaluation, record, passes = _evaluate_case(adapter, workload, 2, variant, conv)
                _save_case(key, evaluation, passes, arrays, None, record)
                results["cases"][key] = record
    np.savez(outdir / "arrays.npz", **arrays)  # type: ignore[arg-type]
    (outdir / "results.json").write_text(json.dumps(results))


def _deterministic_child(outdir: Path) -> None:
    """A worker with the deterministic variant's environment (on the CPU: the variant itself is GPU-only, so
    its build is called directly): TF_DETERMINISTIC_OPS is the switch the installed TF reads, unseeded random
    ops then refuse to run, and the variant's build seeds them, so that the LSTM's dropout runs."""
    from dlbench.frameworks.base import BuildRequest
    from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter

    adapter = TensorFlowAdapter()
    info = adapter.initialize("cpu", THREADS)
    import tensorflow as tf
    from tensorflow.python.framework import config

    results: dict[str, Any] = {"enabled_by_env": bool(config.is_op_determinism_enabled()), "backends": info.backends}
    try:
        tf.nn.dropout(tf.ones([4]), rate=0.5)
        results["unseeded_dropout"] = None
    except RuntimeError as exc:
        results["unseeded_dropout"] = str(exc)
    workload = "conv:lenet.conv1"  # the variant on a convolution, then dropout in a network's gradient pass
    request = BuildRequest(get_workload(workload), "", make_batch(workload, 2), initial_weights(workload),
                           "deterministic", "cpu", conv="im2col")
    case = adapter._build(request)  # the base class's build refuses the GPU-only variant on a CPU
    results["layer_traits"] = case.traits()
    first, second = (case.prepare("gradient")()[0].numpy() for _ in range(2))
    results["layer_repeatable"] = bool(np.array_equal(first, second))
    case.close()
    lstm = BuildRequest(get_workload("lstm"), "", make_batch("lstm", 2), initial_weights("lstm"), "deterministic",
                        "cpu")
    case = adapter._build(lstm)
    grads = case.prepare("gradient")()
    results["dropout_gradient_finite"] = bool(all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy()))
                                                  for g in grads))
    case.close()
    (outdir / "results.json").write_text(json.dumps(results))


CHILDREN: dict[str, Callable[[Path], None]] = {"main": _main_child, "eigen": _eigen_child,
                                                "deterministic": _deterministic_child}


# ==================================================================================================
# Parent side
# ==================================================================================================


def _run_child(mode: str, outdir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter

    process = "" if mode == "main" else mode
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    env.update(TensorFlowAdapter().process_env("cpu", THREADS, process))
    proc = subprocess.run([sys.executable, __file__, "child", mode, str(outdir)], env=env, capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT_S, check=False)
    assert proc.returncode == 0, f"{mode} child failed:\n{proc.stderr[-4000:]}"
    results = json.loads((outdir / "results.json").read_text())
    arrays: dict[str, np.ndarray] = {}
    if (outdir / "arrays.npz").exists():
        with np.load(outdir / "arrays.npz") as data:
            arrays = {k: data[k] for k in data.files}
    return results, arrays


Child = tuple[dict[str, Any], dict[str, np.ndarray]]


@pytest.fixture(scope="module")
def main(tmp_path_factory: pytest.TempPathFactory) -> Child:
    return _run_child("main", tmp_path_factory.mktemp("tf_conv_main"))


@pytest.fixture(scope="module")
def eigen(tmp_path_factory: pytest.TempPathFactory) -> Child:
    return _run_child("eigen", tmp_path_factory.mktemp("tf_conv_eigen"))


def compare_case(actual: Child, key: str, expected: Child, base: str, tol: float) -> dict[str, float]:
    """Assert that case ``key`` of the child ``actual`` equals case ``base`` of the child ``expected``: output,
    every gradient, the input gradient of a layer's gradient pass, and the loss; return the errors. The one
    comparison of every test below, mutation tests included."""
    (results, arrays), (base_results, base_arrays) = actual, expected
    errors: dict[str, float] = {}
    suffixes = [k.removeprefix(base) for k in base_arrays if k.startswith(base + "|")]
    assert "|output" in suffixes
    for suffix in suffixes:
        errors[suffix] = scaled_error(arrays[key + suffix], base_arrays[base + suffix])
    errors.update({f"|big|{name}": e for name, e in results["cases"][key].get("big_errors", {}).items()})
    loss, base_loss = results["cases"][key]["loss"], base_results["cases"][base]["loss"]
    errors["|loss"] = abs(loss - base_loss) / abs(base_loss)
    worst = max(errors, key=lambda name: errors[name])
    assert errors[worst] <= tol, f"{key} differs from {base} in {worst.lstrip('|')}: {errors[worst]:.2e} > {tol:.0e}"
    return errors


# ----- cheap queries: no TensorFlow import -----


def test_variants_and_algorithms_are_declared() -> None:
    from dlbench.cases.spec import CONV_ALGORITHMS
    from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter

    adapter = TensorFlowAdapter()
    assert adapter.conv_algorithms == CONV_ALGORITHMS
    assert {"eigen", "no_autotune", "deterministic"} <= set(adapter.variants)
    assert set(adapter.variant_help) == set(adapter.variants)
    assert adapter.variant_devices == {"eigen": ("cpu",), "no_autotune": ("gpu",), "deterministic": ("gpu",)}
    assert adapter.variant_env == {"eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"},
                                   "no_autotune": {"TF_CUDNN_USE_AUTOTUNE": "0"},
                                   "deterministic": {"TF_DETERMINISTIC_OPS": "1"}}
    assert all(adapter.own_process(v) for v in adapter.variant_env)
    assert not adapter.own_process("function")
    gpu = adapter.process_env("gpu", 4, "no_autotune")
    assert gpu["TF_CUDNN_USE_AUTOTUNE"] == "0" and gpu["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert adapter.process_env("gpu", 4, "deterministic")["TF_DETERMINISTIC_OPS"] == "1"
    cpu = adapter.process_env("cpu", 3, "eigen")
    assert cpu["TF_ENABLE_ONEDNN_OPTS"] == "0" and cpu["TF_NUM_INTRAOP_THREADS"] == "3"
    assert "TF_ENABLE_ONEDNN_OPTS" not in adapter.process_env("cpu", 3)


def test_every_switch_is_read_by_the_installed_tensorflow() -> None:
    """The environment variables of the variants are names the installed TensorFlow's C++ library reads (a
    renamed or dropped switch would make its variant silently measure the default)."""
    from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter

    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.submodule_search_locations
    library = next(Path(spec.submodule_search_locations[0]).glob("libtensorflow_framework.so*"))
    strings = library.read_bytes()
    names = {name for env in TensorFlowAdapter().variant_env.values() for name in env}
    assert names == {"TF_ENABLE_ONEDNN_OPTS", "TF_CUDNN_USE_AUTOTUNE", "TF_DETERMINISTIC_OPS"}
    for name in names:
        assert name.encode() + b"\0" in strings, f"{name} is not in {library.name}"
    assert b"TF_NO_SUCH_SWITCH\0" not in strings


# ----- the algorithms on small shapes -----


@pytest.mark.parametrize("variant", SMALL_VARIANTS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("index", range(len(SHAPES)), ids=SHAPE_IDS)
def test_algorithm_equals_native_on_small_shapes(main: Child, index: int, algorithm: str, variant: str) -> None:
    arrays = main[1]
    native = f"small|{index}|{variant}|native"
    h, w, cin, cout, k, stride, padding = SHAPES[index]
    out = ((h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1)
    assert arrays[f"{native}|y"].shape == (2, *out, cout)
    for name in QUANTITIES:
        error = scaled_error(arrays[f"small|{index}|{variant}|{algorithm}|{name}"], arrays[f"{native}|{name}"])
        assert error <= tolerance(algorithm), f"{name}: {error:.2e}"


def test_native_is_the_same_in_every_variant(main: Child) -> None:
    arrays = main[1]
    for index in range(len(SHAPES)):
        for variant in ("xla", "eager"):
            for name in QUANTITIES:
                base = arrays[f"small|{index}|function|native|{name}"]
                assert scaled_error(arrays[f"small|{index}|{variant}|native|{name}"], base) <= F32_TOL


@pytest.mark.parametrize("wrong", ["flipped", "padding"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_wrong_algorithm_fails_the_comparison(main: Child, algorithm: str, wrong: str) -> None:
    """Mutation test: the kernel flipped (a convolution instead of the cross-correlation) or the padding off
    by one is caught, on every shape it changes (a 1x1 kernel has nothing to flip), by orders of magnitude."""
    arrays = main[1]
    for index, shape in enumerate(SHAPES):
        if wrong == "flipped" and shape[4] == 1:
            continue
        native = f"small|{index}|function|native"
        errors = {name: scaled_error(arrays[f"wrong|{index}|{wrong}|{algorithm}|{name}"], arrays[f"{native}|{name}"])
                  for name in QUANTITIES}
        assert errors["y"] > 100 * tolerance(algorithm), errors
        assert errors["dkernel"] > 100 * tolerance(algorithm), errors


# ----- through the adapter: networks and layer benchmarks -----

CASES = [(w, v, a) for w, _, variants in NETWORK_CASES for v in variants for a in ALGORITHMS]


@pytest.mark.parametrize(("workload", "variant", "algorithm"), CASES)
def test_adapter_evaluation_equals_native(main: Child, workload: str, variant: str, algorithm: str) -> None:
    results, arrays = main
    key, base = f"net|{workload}|{variant}|{algorithm}", f"net|{workload}|{variant}|native"
    compare_case(main, key, main, base, tolerance(algorithm))
    if get_workload(workload).is_layer:
        assert f"{key}|dx" in arrays  # the input gradient, compared above with native's
    assert results["cases"][key]["dtypes"] == {"activation": "float32", "output": "float32"}


@functools.cache
def reference_for(workload: str, batch_size: int) -> Evaluation:
    from dlbench.verify.reference import reference_evaluate

    batch = make_batch(workload, batch_size)
    return reference_evaluate(workload, "", batch, initial_weights(workload), calibrate=False).evaluation


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
@pytest.mark.parametrize(("workload", "batch_size"), [(w, n) for w, n, _ in NETWORK_CASES if w != "alexnet"])
def test_matches_the_float64_reference(main: Child, workload: str, batch_size: int, algorithm: str) -> None:
    """Native itself is right (the layer benchmarks are new: their padding, loss and gradients), and so is
    every algorithm, against float64 as well as against native."""
    results, arrays = main
    reference = reference_for(workload, batch_size)
    key = f"net|{workload}|function|{algorithm}"
    assert scaled_error(arrays[f"{key}|output"], reference.output) <= REFERENCE_TOL
    assert results["cases"][key]["loss"] == pytest.approx(reference.loss, rel=LOSS_RTOL)
    for name, grad in reference.gradients.items():
        assert scaled_error(arrays[f"{key}|grad|{name}"], grad) <= REFERENCE_TOL, name


@pytest.mark.parametrize("workload", list(LAYER_WORKLOADS))
def test_layer_gradient_pass_computes_input_and_weight_gradients(main: Child, workload: str) -> None:
    record = main[0]["cases"][f"net|{workload}|function|native"]
    layer = get_workload(workload).convolutions[0]
    kernel, bias = (list(p.shape) for p in layer.params)
    assert record["gradient_pass_shapes"] == [kernel, bias, [2, layer.in_h, layer.in_w, layer.cin]]


def test_layer_input_gradient_matches_numpy(main: Child) -> None:
    """dL/dx of conv:lenet.conv1 (loss sum(y^2)/2N, so dL/dy = y/N) by float64 NumPy: the correlation's
    adjoint, each output position's y/N spread back through the kernel."""
    arrays = main[1]
    workload = "conv:lenet.conv1"
    layer = get_workload(workload).convolutions[0]
    x, weights = make_batch(workload, 2).x.astype(np.float64), initial_weights(workload)
    kernel, bias = weights["conv1.kernel"].astype(np.float64), weights["conv1.bias"].astype(np.float64)
    k = layer.k
    patches = np.stack([x[:, a : a + layer.out_h, b : b + layer.out_w, :] for a in range(k) for b in range(k)], 3)
    y = np.einsum("nhwpc,pco->nhwo", patches, kernel.reshape(k * k, layer.cin, layer.cout)) + bias
    dy = y / x.shape[0]
    dx = np.zeros_like(x)
    for a in range(k):
        for b in range(k):
            dx[:, a : a + layer.out_h, b : b + layer.out_w, :] += dy @ kernel[a, b].T
    for algorithm in ALL_ALGORITHMS:
        assert scaled_error(arrays[f"net|{workload}|function|{algorithm}|dx"], dx) <= REFERENCE_TOL, algorithm


@pytest.mark.parametrize("workload", BF16_LAYERS)
@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_bf16_layer_equals_float32_native(main: Child, workload: str, algorithm: str) -> None:
    results, arrays = main
    if results["bf16_unavailable"]:
        pytest.skip(results["bf16_unavailable"])
    key = f"bf16|{workload}|{algorithm}"
    errors = compare_case(main, key, main, f"net|{workload}|function|native", BF16_TOL)
    assert errors["|output"] > 1e-4  # bf16 really ran: its rounding shows
    assert results["cases"][key]["dtypes"] == {"activation": "bfloat16", "output": "bfloat16"}


@pytest.mark.parametrize(("key", "base", "algorithm"), [
    ("mutant|fft_no_conj", "net|conv:lenet.conv2|function|native", "fft"),
    ("mutant|pad_shifted", "net|conv:alexnet.conv3|function|native", "direct"),
])
def test_a_wrong_algorithm_through_the_adapter_fails(main: Child, key: str, base: str, algorithm: str) -> None:
    with pytest.raises(AssertionError, match="differs from"):
        compare_case(main, key, main, base, tolerance(algorithm))


# ----- traits and variants -----


def cpu_conv_backend(results: dict[str, Any]) -> str:
    """What computes native convolutions in a worker with TensorFlow's default switches: oneDNN where TF turns
    it on by default (x86 CPUs with AVX-512 VNNI, bf16 or AMX, or ``TF_ENABLE_ONEDNN_OPTS=1``), else Eigen."""
    return "onednn" if results["backends"]["onednn"] == "on" else "eigen"


def test_traits_name_the_algorithm_and_the_backend(main: Child) -> None:
    results = main[0]
    for workload, _, variants in NETWORK_CASES:
        for variant in variants:
            for conv in ALL_ALGORITHMS:
                traits = results["cases"][f"net|{workload}|{variant}|{conv}"]["traits"]
                backend = "xla" if variant == "xla" else cpu_conv_backend(results)
                assert traits == {"layout": "NHWC", "conv": conv, "conv_backend": backend}, (workload, variant)
    for workload in BF16_LAYERS if results["bf16_unavailable"] is None else ():
        assert results["cases"][f"bf16|{workload}|native"]["traits"]["conv_backend"] == "onednn"


def test_variants_that_cannot_run_here_are_unavailable(main: Child) -> None:
    errors = main[0]["errors"]
    if main[0]["backends"]["onednn"] == "on":  # else the default worker already is an Eigen worker
        assert errors["eigen_with_onednn_on"][0] == "CaseUnavailable"
        assert "TF_ENABLE_ONEDNN_OPTS=0" in errors["eigen_with_onednn_on"][1]
    assert errors["no_autotune_on_cpu"] == ["CaseUnavailable", "the TensorFlow variant 'no_autotune' runs on gpu only"]
    assert errors["deterministic_on_cpu"][0] == "CaseUnavailable"
    assert errors["fft_without_convolutions"][0] == "CaseUnavailable"
    assert errors["fft_without_convolutions"][1] == "lstm has no convolution: only conv 'native' applies"
    assert errors["unknown_algorithm"][0] == "SuiteError"


def test_eigen_worker_runs_eigen(eigen: Child, main: Child) -> None:
    """A worker started with the eigen variant's environment has oneDNN off, reports Eigen as the backend of
    every case (also of the default variant in it), and computes what the oneDNN worker computes."""
    results = eigen[0]
    assert results["backends"]["onednn"] == "off"
    assert results["settings"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert len(results["cases"]) == 12
    for key, record in results["cases"].items():
        conv = key.split("|")[-1]
        assert record["traits"] == {"layout": "NHWC", "conv": conv, "conv_backend": "eigen"}, key
        workload = key.split("|")[1]
        compare_case(eigen, key, main, f"net|{workload}|function|{conv}", tolerance(conv))


def test_deterministic_variant_switch_and_seed(tmp_path: Path) -> None:
    results, _ = _run_child("deterministic", tmp_path)
    assert results["enabled_by_env"] is True  # TF_DETERMINISTIC_OPS=1 is read by the installed TF
    assert results["unseeded_dropout"] is not None and "seed" in results["unseeded_dropout"]
    backend = cpu_conv_backend(results)
    assert results["layer_traits"] == {"layout": "NHWC", "conv": "im2col", "conv_backend": backend}
    assert results["layer_repeatable"] is True
    assert results["dropout_gradient_finite"] is True


if __name__ == "__main__" and len(sys.argv) >= 4 and sys.argv[1] == "child":
    CHILDREN[sys.argv[2]](Path(sys.argv[3]))
    sys.stdout.flush()
    os._exit(0)  # skip TensorFlow's slow interpreter shutdown
