"""Integration tests of the TensorFlow adapter.

TensorFlow fixes its thread pools once per process and would share this pytest process with torch and
JAX from other tests, so every TensorFlow call happens in a fresh child process: this file run as a
script (``python test_tensorflow_adapter.py child OUTDIR``) builds and runs every case once and saves
shapes, numbers and error messages to OUTDIR. The tests below only read those files and compare them
with the float64 NumPy reference (:mod:`dlbench.verify.reference`, pure NumPy, computed here in the parent
for the same canonical weights and batches), so the pytest process itself never imports TensorFlow.
"""

from __future__ import annotations

import functools
import importlib.metadata
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
from dlbench.verify.reference import reference_evaluate
from dlbench.workloads import get_workload, initial_weights, make_batch

pytestmark = pytest.mark.integration

if importlib.util.find_spec("tensorflow") is None:  # find_spec does not import TensorFlow
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

THREADS = 2
# (workload, batch size): small batches keep the whole file well under a minute of CPU.
BATCHES = {"lenet": 2, "autoencoder": 3, "lstm": 3, "alexnet": 1}
VARIANTS = ("function", "xla", "eager")
# AlexNet is checked on the default variant only: XLA-compiling its gradient costs ~10 s.
CROSS_VARIANT = ("lenet", "autoencoder", "lstm")
CHILD_TIMEOUT_S = 900
LOSS_RTOL = 1e-5  # a scalar: the float32 budget of dlbench.verify.tolerances (1e-5 for every workload)


def case_labels() -> list[tuple[str, str]]:
    return [(w, p) for w in BATCHES for p in get_workload(w).phase_names]


def label(workload: str, phase: str) -> str:
    return f"{workload}/{phase}" if phase else workload


# ==================================================================================================
# Child side: the only code that imports TensorFlow (through the adapter).
# ==================================================================================================


def _error_of(action: Callable[[], Any]) -> list[str] | None:
    """[exception type, message] raised by ``action``, or None if it succeeded."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001  the parent asserts on the type
        return [type(exc).__name__, str(exc)]
    return None


def gradient_shapes(handle: Any) -> list[tuple[int, ...]]:
    """Dense shapes of a gradient handle (tensors or IndexedSlices), without copying data to the host."""
    return [tuple(int(d) for d in g.shape) for g in handle]


def _child_main(outdir: Path, preimport: bool) -> None:
    if preimport:  # as if other tests had already imported the other frameworks into this process
        import jax  # noqa: F401
        import torch  # noqa: F401

    from dlbench.frameworks.base import BuildRequest
    from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter

    adapter = TensorFlowAdapter()
    info = adapter.initialize("cpu", THREADS)
    jax_module = sys.modules.get("jax")
    results: dict[str, Any] = {
        "info": {"threads": info.threads, "version": info.version, "devices": list(info.devices),
                 "settings": info.settings, "backends": info.backends},
        "jax_imported": jax_module is not None,
        "cases": {},
    }
    arrays: dict[str, np.ndarray] = {}

    def request(workload: str, phase: str, variant: str, dropout: bool = True, **kw: Any) -> BuildRequest:
        spec = get_workload(workload)
        batch = make_batch(workload, BATCHES[workload])
        return BuildRequest(spec, phase, batch, initial_weights(workload), variant, "cpu",
                            dropout=dropout, **kw)

    if preimport:  # the smoke check of this mode: one case runs
        case = adapter.build(request("lenet", "", "function"))
        out = case.prepare("forward")()
        results["cases"]["lenet|function"] = {"forward_shape": list(out.shape)}
        (outdir / "results.json").write_text(json.dumps(results))
        return

    for workload, phase in case_labels():
        variants = VARIANTS if workload in CROSS_VARIANT else ("function",)
        for variant in variants:
            key = f"{label(workload, phase)}|{variant}"
            case = adapter.build(request(workload, phase, variant, dropout=True))
            record: dict[str, Any] = {"trainable_params": case.trainable_params}
            if variant == "function" or (workload == "lenet") or (workload == "lstm" and variant == "xla"):
                forward = case.prepare("forward")()
                case.sync(forward)
                gradient = case.prepare("gradient")()
                case.sync(gradient)
                record["forward_shape"] = list(forward.shape)
                record["gradient_shapes"] = [list(s) for s in gradient_shapes(gradient)]
                arrays[f"{key}|forward"] = forward.numpy()
                record["flops_forward"] = case.framework_flops("forward")
            evaluation = case.evaluate()
            record["loss"] = evaluation.loss
            record["eval_shapes"] = {n: list(g.shape) for n, g in evaluation.gradients.items()}
            arrays[f"{key}|output"] = evaluation.output
            if workload != "alexnet":  # 250 MB of gradients: shapes are enough there
                for name, grad in evaluation.gradients.items():
                    arrays[f"{key}|grad|{name}"] = grad
            if workload == "lenet" and variant == "function":
                case.reset_peak_memory()
                case.sync(case.prepare("gradient")())
                record["peak_gradient"] = case.peak_memory_bytes("gradient")
            if workload == "alexnet":
                case.reset_peak_memory()
                case.sync(case.prepare("forward")())
                record["peak_forward"] = case.peak_memory_bytes("forward")
            results["cases"][key] = record
            case.close()

    # Dropout: random in the gradient pass when requested, absent from forward and evaluate.
    for dropout in (True, False):
        case = adapter.build(request("lstm", "", "function", dropout=dropout))
        grads = case.prepare("gradient")
        for i in range(2):
            arrays[f"dropout={dropout}|grad{i}"] = grads()[-2].numpy()  # classifier.kernel
        case.close()

    def build_with(**kw: Any) -> Callable[[], Any]:
        return lambda: adapter.build(request("lenet", "", **kw))

    lenet = adapter.build(request("lenet", "", "function"))
    results["errors"] = {
        "unknown_variant": _error_of(build_with(variant="graph")),
        "tf32_on_cpu": _error_of(build_with(variant="function", precision="tf32")),
        "unknown_pass": _error_of(lambda: lenet.prepare("backward")),
        "bad_device": _error_of(lambda: adapter.initialize("tpu", THREADS)),
        "zero_threads": _error_of(lambda: adapter.initialize("cpu", 0)),
        "other_threads": _error_of(lambda: adapter.initialize("cpu", THREADS + 1)),
        "gpu_on_cpu_build": _error_of(lambda: adapter.initialize("gpu", THREADS)),
    }
    np.savez(outdir / "arrays.npz", **arrays)  # type: ignore[arg-type]  # stubs: ** may hit allow_pickle
    (outdir / "results.json").write_text(json.dumps(results))


# ==================================================================================================
# Parent side
# ==================================================================================================


def _run_child(outdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter

    env = {**os.environ, **TensorFlowAdapter().worker_env("cpu", THREADS)}
    proc = subprocess.run(
        [sys.executable, __file__, "child", str(outdir), *extra],
        env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False,
    )
    assert proc.returncode == 0, f"child failed:\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    outdir = tmp_path_factory.mktemp("tf_child")
    _run_child(outdir)
    results = json.loads((outdir / "results.json").read_text())
    with np.load(outdir / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    return results, arrays


# ----- the float64 reference of what the child evaluated -----


@functools.cache
def reference_for(workload: str, phase: str = "") -> Evaluation:
    """Output, loss and canonical-layout gradients of the child's case: same batch, canonical weights.
    Not calibrated: the fixed tolerances below already cover float32 rounding on these inputs."""
    batch = make_batch(workload, BATCHES[workload])
    return reference_evaluate(workload, phase, batch, initial_weights(workload), calibrate=False).evaluation


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 2e-4) -> None:
    """float32 against float64: relative to the tensor's scale, so tiny entries do not dominate."""
    scale = max(float(np.max(np.abs(expected))), 1e-6)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# ----- tests that need no TensorFlow import at all -----


def test_module_import_does_not_import_tensorflow() -> None:
    code = ("import sys, dlbench.frameworks.tensorflow.adapter as m; m.TensorFlowAdapter().worker_env('cpu', 1); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cheap_queries() -> None:
    from dlbench.frameworks.registry import get_adapter
    from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter

    adapter = get_adapter("tensorflow")
    assert isinstance(adapter, TensorFlowAdapter)
    assert (adapter.name, adapter.display_name, adapter.module) == ("tensorflow", "TensorFlow", "tensorflow")
    assert adapter.default_variant in adapter.variants
    assert set(adapter.variant_help) == set(adapter.variants)
    assert adapter.is_installed() and adapter.version()
    installed = {d for d in adapter.distributions if _has_dist(d)}
    assert adapter.supports_gpu_build() is (installed != {"tensorflow-cpu"})
    env = adapter.worker_env("cpu", 3)
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "2" and env["TF_NUM_INTRAOP_THREADS"] == "3"
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in env
    assert adapter.worker_env("gpu", 1)["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def _has_dist(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# ----- tests on the child's results -----


def test_runtime_info(child: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    info = child[0]["info"]
    assert info["threads"] == THREADS
    assert info["settings"]["interop_threads"] == "1"
    assert info["devices"] == ["cpu"]
    assert info["version"] == importlib.metadata.version("tensorflow-cpu" if _has_dist("tensorflow-cpu")
                                                         else "tensorflow")
    assert info["backends"]["onednn"] in ("on", "off")


def test_jax_is_not_imported_by_the_worker(child: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    results = child[0]
    assert results["jax_imported"] is False
    assert results["info"]["settings"]["jax_import_blocked"] == "yes"


@pytest.mark.parametrize(("workload", "phase"), case_labels())
def test_shapes_and_parameter_counts(
    child: tuple[dict[str, Any], dict[str, np.ndarray]], workload: str, phase: str
) -> None:
    results, _ = child
    spec = get_workload(workload)
    trainable = spec.phase(phase).trainable
    expected_shapes = [list(spec.param(n).shape) for n in trainable]
    record = results["cases"][f"{label(workload, phase)}|function"]
    assert record["trainable_params"] == spec.trainable_params(phase)
    n = BATCHES[workload]
    if spec.phase(phase).output == "reconstruction":
        k = int(phase[-1])
        expected_out = [n, [784, 400, 200][k - 1]]
    else:
        expected_out = [n, spec.num_classes]
    assert record["forward_shape"] == expected_out
    assert record["gradient_shapes"] == expected_shapes
    assert list(record["eval_shapes"]) == list(trainable)
    assert list(record["eval_shapes"].values()) == expected_shapes


def test_lenet_matches_reference(child: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    results, arrays = child
    reference = reference_for("lenet")
    assert_close(arrays["lenet|function|forward"], reference.output)
    assert_close(arrays["lenet|function|output"], reference.output)
    assert results["cases"]["lenet|function"]["loss"] == pytest.approx(reference.loss, rel=LOSS_RTOL)


@pytest.mark.parametrize("phase", get_workload("autoencoder").phase_names)
def test_autoencoder_matches_reference(child: tuple[dict[str, Any], dict[str, np.ndarray]], phase: str) -> None:
    """Output, loss and every trainable gradient: the tied kernel of a pretraining phase must receive both
    the encoder's and the decoder's contribution."""
    results, arrays = child
    key = f"autoencoder/{phase}|function"
    reference = reference_for("autoencoder", phase)
    assert_close(arrays[f"{key}|forward"], reference.output)
    assert_close(arrays[f"{key}|output"], reference.output)
    assert results["cases"][key]["loss"] == pytest.approx(reference.loss, rel=LOSS_RTOL)
    assert {k.removeprefix(f"{key}|grad|") for k in arrays if k.startswith(f"{key}|grad|")} == set(
        reference.gradients
    )
    for name, grad in reference.gradients.items():
        assert_close(arrays[f"{key}|grad|{name}"], grad, rtol=1e-3)


def test_lstm_matches_reference(child: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    results, arrays = child
    reference = reference_for("lstm")
    assert_close(arrays["lstm|function|forward"], reference.output)  # built with dropout on: forward ignores it
    assert_close(arrays["lstm|function|output"], reference.output)
    assert results["cases"]["lstm|function"]["loss"] == pytest.approx(reference.loss, rel=LOSS_RTOL)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "function"])
@pytest.mark.parametrize(("workload", "phase"), [c for c in case_labels() if c[0] in CROSS_VARIANT])
def test_variants_agree(
    child: tuple[dict[str, Any], dict[str, np.ndarray]], workload: str, phase: str, variant: str
) -> None:
    results, arrays = child
    base, other = f"{label(workload, phase)}|function", f"{label(workload, phase)}|{variant}"
    assert results["cases"][other]["trainable_params"] == results["cases"][base]["trainable_params"]
    assert results["cases"][other]["loss"] == pytest.approx(results["cases"][base]["loss"], rel=1e-4)
    compared = [k.removeprefix(base) for k in arrays if k.startswith(base + "|")]
    assert "|output" in compared and any(k.startswith("|grad|") for k in compared)
    for suffix in compared:
        if f"{other}{suffix}" in arrays:
            assert_close(arrays[f"{other}{suffix}"], arrays[f"{base}{suffix}"], rtol=1e-3)


def test_alexnet_forward_ignores_dropout(child: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    _, arrays = child
    assert_close(arrays["alexnet|function|forward"], arrays["alexnet|function|output"], rtol=1e-4)


def test_dropout_only_when_requested(child: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    _, arrays = child
    without = arrays["lstm|function|grad|classifier.kernel"]  # evaluate(): dropout off
    assert not np.allclose(arrays["dropout=True|grad0"], arrays["dropout=True|grad1"])
    assert not np.allclose(arrays["dropout=True|grad0"], without)
    assert_close(arrays["dropout=False|grad0"], without, rtol=1e-4)
    assert_close(arrays["dropout=False|grad1"], without, rtol=1e-4)


def test_memory_counters(child: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    cases = child[0]["cases"]
    if child[0]["info"]["backends"]["onednn"] == "off":
        # TF's CPU allocator keeps statistics only with oneDNN on (the default on x86 CPUs with AVX-512 VNNI,
        # bf16 or AMX): elsewhere get_memory_info("CPU:0") raises, and the case has no framework peak.
        assert cases["lenet|function"]["peak_gradient"] is None
        return
    assert cases["lenet|function"]["peak_gradient"] > 0
    # The 62 M float32 weights are live allocations of TF's CPU allocator, so its peak must cover them.
    assert cases["alexnet|function"]["peak_forward"] >= get_workload("alexnet").total_params() * 4


def test_framework_flops(child: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    cases = child[0]["cases"]
    macs = get_workload("lenet").macs() * BATCHES["lenet"]
    assert cases["lenet|function"]["flops_forward"] == pytest.approx(2 * macs, rel=0.05)
    assert cases["lstm|function"]["flops_forward"] is None  # scan body would be counted once


def test_bad_input_is_reported_clearly(child: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    errors = child[0]["errors"]
    assert errors["unknown_variant"][0] == "SuiteError" and "graph" in errors["unknown_variant"][1]
    assert errors["tf32_on_cpu"][0] == "CaseUnavailable"
    assert errors["unknown_pass"][0] == "SuiteError"
    assert errors["bad_device"][0] == "SuiteError"  # checked once by the adapter base class
    assert errors["zero_threads"][0] == "SuiteError"
    assert errors["other_threads"][0] == "DlbenchError" and "own worker" in errors["other_threads"][1]
    assert errors["gpu_on_cpu_build"][0] == "CaseUnavailable"
    assert all("\n" not in e[1] for e in errors.values())


@pytest.mark.skipif(importlib.util.find_spec("jax") is None or importlib.util.find_spec("torch") is None,
                    reason="needs torch and jax installed")
def test_works_when_torch_and_jax_are_already_imported(tmp_path: Path) -> None:
    _run_child(tmp_path, "--preimport")
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["info"]["threads"] == THREADS
    assert results["jax_imported"] is True
    assert results["info"]["settings"]["jax_import_blocked"].startswith("no")
    assert results["cases"]["lenet|function"]["forward_shape"] == [BATCHES["lenet"], 10]


if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "child":
    _child_main(Path(sys.argv[2]), preimport="--preimport" in sys.argv[3:])
    sys.stdout.flush()
    os._exit(0)  # skip TensorFlow's slow interpreter shutdown
