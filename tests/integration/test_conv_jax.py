"""The JAX adapter's convolution algorithms (``im2col``, ``direct``, ``fft``) against XLA's own convolution
(``native``), its ``conv``/``conv_backend`` traits and its XLA switch variants.

Errors are normwise, ``max|a - b| / max|b|``, the measure of ``dlbench verify``. Tolerances and why:

* Small shapes, float32: every algorithm sums the same ``k*k*Cin`` products in another order (and the FFT
  through transforms of length <= 31), so the difference is float32 rounding, a few units of 6e-8 times
  sqrt(length). Measured <= 1.8e-6 for every algorithm, forward and all three gradients, on these shapes and on
  LeNet/AlexNet layer shapes with normal data; ``SMALL_RTOL`` 2e-5 sits 10x above, and a wrong algorithm
  (flipped kernel, padding off by one, convolution instead of correlation) is off by O(1).
* Networks and layer benchmarks: the budgets of ``dlbench verify`` (``tolerance_for``: LeNet 1e-5 output /
  3e-5 gradients, AlexNet 3e-5 / 5e-5; bf16 8 / 16 bf16 units). AlexNet's ReLU and max-pool near-ties may
  route a gradient element differently in any two correct float32 implementations; the float64 reference
  computes the exact effect of every such decision (``Reference.allowance``, dlbench.verify.ties), and two
  implementations may each depart from it by that much, so twice the allowance is subtracted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from dlbench.frameworks.base import BuildRequest, CaseUnavailable, Evaluation  # noqa: E402
from dlbench.frameworks.jax import convolution  # noqa: E402
from dlbench.frameworks.jax.adapter import JaxAdapter  # noqa: E402
from dlbench.frameworks.jax.layers import conv as layers_conv  # noqa: E402
from dlbench.frameworks.jax.layers import dense, max_pool_reshape_2x2  # noqa: E402
from dlbench.frameworks.jax.networks import network_for  # noqa: E402
from dlbench.frameworks.jax.switches import SWITCH_FLAGS, xla_flags  # noqa: E402
from dlbench.verify.biases import verification_weights  # noqa: E402
from dlbench.verify.compare import compare_evaluations, failures  # noqa: E402
from dlbench.verify.reference import reference_evaluate  # noqa: E402
from dlbench.verify.tolerances import tolerance_for  # noqa: E402
from dlbench.workloads import get_workload, make_batch  # noqa: E402
from dlbench.workloads.definitions import LAYER_WORKLOADS  # noqa: E402

pytestmark = pytest.mark.integration

ALGORITHMS = ("im2col", "direct", "fft")
SMALL_RTOL = 2e-5
# (N, H, W, Cin, Cout, k, stride, padding): odd and non-square sizes, stride 1/2/4, padding 0/1/2, k 1/3/5
SHAPES = [
    (2, 7, 9, 3, 4, 3, 1, 1),
    (2, 11, 8, 2, 5, 5, 2, 2),
    (1, 13, 13, 3, 2, 1, 1, 0),
    (2, 19, 17, 3, 4, 5, 4, 0),
    (2, 9, 9, 4, 3, 3, 2, 0),
    (1, 10, 7, 2, 3, 1, 2, 1),
    (2, 15, 15, 3, 2, 5, 4, 2),
    (1, 6, 6, 2, 2, 3, 1, 2),
]


def normwise(a: Any, b: Any) -> float:
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a64.shape == b64.shape, f"shape {a64.shape} vs {b64.shape}"
    scale = float(np.abs(b64).max())
    return float(np.abs(a64 - b64).max()) / scale if scale > 0 else float(np.abs(a64).max())


def conv_and_grads(algorithm: str, x: Any, kernel: Any, bias: Any, stride: int, padding: int) -> tuple[Any, ...]:
    """Output and the gradients w.r.t. input, kernel and bias of ``sum(y**2) / 2``, jit-compiled."""
    def loss(x: Any, kernel: Any, bias: Any) -> Any:
        return jnp.sum(convolution.conv2d(x, kernel, bias, stride, padding, algorithm) ** 2) / 2

    def forward(x: Any, kernel: Any, bias: Any) -> Any:
        return convolution.conv2d(x, kernel, bias, stride, padding, algorithm)

    output = jax.jit(forward)(x, kernel, bias)
    return (output, *jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(x, kernel, bias))


def small_case(shape: tuple[int, ...], seed: int = 0) -> tuple[Any, Any, Any, int, int]:
    n, h, w, cin, cout, k, stride, padding = shape
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((n, h, w, cin), dtype=np.float32))
    kernel = jnp.asarray(rng.standard_normal((k, k, cin, cout), dtype=np.float32))
    bias = jnp.asarray(rng.standard_normal((cout,), dtype=np.float32))
    return x, kernel, bias, stride, padding


def assert_matches_native(algorithm: str, shape: tuple[int, ...]) -> None:
    x, kernel, bias, stride, padding = small_case(shape)
    expected = conv_and_grads("native", x, kernel, bias, stride, padding)
    got = conv_and_grads(algorithm, x, kernel, bias, stride, padding)
    for label, a, b in zip(("output", "input grad", "kernel grad", "bias grad"), got, expected, strict=True):
        error = normwise(a, b)
        assert error <= SMALL_RTOL, f"{algorithm} {shape}: {label} differs from native by {error:.1e}"


@pytest.fixture(scope="module")
def adapter() -> JaxAdapter:
    adapter = JaxAdapter()
    adapter.initialize("cpu", 1)
    return adapter


def request(workload: str, conv: str, batch_size: int = 2, precision: str = "float32",
            variant: str = "jit") -> BuildRequest:
    return BuildRequest(workload=get_workload(workload), phase="", batch=make_batch(workload, batch_size),
                        weights=verification_weights(workload), variant=variant, device="cpu",
                        precision=precision, dropout=False, conv=conv)


Built = tuple[Evaluation, dict[str, str], dict[str, str]]


@pytest.fixture(scope="module")
def evaluated(adapter: JaxAdapter) -> Iterator[Callable[..., Built]]:
    """(evaluation, traits, dtypes) of a built case, each built once for the whole module (compiling the
    direct algorithm's k*k matmuls is the slow part; traits and evaluate share the gradient executable)."""
    cache: dict[tuple[Any, ...], Built] = {}

    def get(workload: str, conv: str, batch_size: int = 2, precision: str = "float32") -> Built:
        key = (workload, conv, batch_size, precision)
        if key not in cache:
            case = adapter.build(request(workload, conv, batch_size, precision))
            try:
                cache[key] = (case.evaluate(), case.traits(), case.dtypes())
            finally:
                case.close()
        return cache[key]

    yield get
    cache.clear()


def assert_evaluations_match(got: Evaluation, native: Evaluation, workload: str, precision: str = "float32",
                             allowance: dict[str, Any] | None = None) -> None:
    errors = compare_evaluations(got, native, tolerance_for(workload, precision), allowance)
    bad = failures(errors)
    assert not bad, "; ".join(e.describe() for e in bad)


# ----- the algorithms themselves, on small shapes -----
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n{}_{}x{}_c{}-{}_k{}_s{}_p{}".format(*s))
def test_algorithm_equals_native_forward_and_gradients(algorithm: str, shape: tuple[int, ...]) -> None:
    assert_matches_native(algorithm, shape)


def flipped_kernel(x: Any, kernel: Any, stride: int, padding: int) -> Any:
    return convolution.im2col(x, kernel[::-1, ::-1], stride, padding)


def padding_off_by_one(x: Any, kernel: Any, stride: int, padding: int) -> Any:
    """One more zero row and column on the top and left: the same output shape, shifted by one."""
    full = convolution.direct(x, kernel, stride, padding + 1)
    expected = convolution.native(x, kernel, stride, padding)
    return full[:, : expected.shape[1], : expected.shape[2], :]


def fft_convolution_not_correlation(x: Any, kernel: Any, stride: int, padding: int) -> Any:
    """The FFT algorithm without the conjugate of the kernel's transform: a true (flipped) convolution."""
    xp = convolution._pad(x, padding)
    n, hp, wp, _ = xp.shape
    k, cout = kernel.shape[0], kernel.shape[3]
    product = jnp.einsum("nhwc,hwco->nhwo", jnp.fft.rfft2(xp, axes=(1, 2)),
                         jnp.fft.rfft2(kernel, s=(hp, wp), axes=(0, 1)))
    full = jnp.fft.irfft2(product, s=(hp, wp), axes=(1, 2))
    oh, ow = (hp - k) // stride + 1, (wp - k) // stride + 1
    return full[:, : stride * (oh - 1) + 1 : stride, : stride * (ow - 1) + 1 : stride, :cout]


@pytest.mark.parametrize("wrong", [flipped_kernel, padding_off_by_one, fft_convolution_not_correlation])
def test_a_wrong_algorithm_fails_the_same_comparisons(
    wrong: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, adapter: JaxAdapter
) -> None:
    """Mutation test: the comparisons above and the adapter-level one below catch each mistake."""
    monkeypatch.setitem(convolution.ALGORITHMS, "im2col", wrong)
    with pytest.raises(AssertionError, match="differs from native"):
        assert_matches_native("im2col", (2, 9, 11, 3, 4, 3, 1, 1))
    evaluations = []
    for algorithm in ("native", "im2col"):
        case = adapter.build(request("conv:lenet.conv2", algorithm))
        evaluations.append(case.evaluate())
        case.close()
    native, mutant = evaluations
    with pytest.raises(AssertionError, match="output"):
        assert_evaluations_match(mutant, native, "conv:lenet.conv2")


def test_native_is_the_code_the_networks_ran_before() -> None:
    """``native`` LeNet traces to exactly the program built from ``layers.conv`` (the pre-axis code)."""
    weights = {k: jnp.asarray(v) for k, v in verification_weights("lenet").items()}
    x = (jnp.asarray(make_batch("lenet", 2).x),)

    def before(params: Any, inputs: Any) -> Any:
        h = max_pool_reshape_2x2(jnp.tanh(layers_conv(params, "conv1", inputs[0])))
        h = max_pool_reshape_2x2(jnp.tanh(layers_conv(params, "conv2", h)))
        h = jax.nn.relu(dense(params, "fc1", h.reshape(h.shape[0], -1)))
        return dense(params, "fc2", h)

    network = network_for(get_workload("lenet"), "", "jit", "native")
    now = jax.make_jaxpr(lambda p, i: network.output(p, i, None, max_pool_reshape_2x2))(weights, x)
    convs_now = [e for e in now.jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    convs_before = [e for e in jax.make_jaxpr(before)(weights, x).jaxpr.eqns
                    if e.primitive.name == "conv_general_dilated"]
    assert len(convs_now) == 2 and [e.params for e in convs_now] == [e.params for e in convs_before]
    np.testing.assert_array_equal(jax.jit(lambda p, i: network.output(p, i, None, max_pool_reshape_2x2))(weights, x),
                                  jax.jit(before)(weights, x))


# ----- through the adapter: networks and layer benchmarks -----
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("workload", list(LAYER_WORKLOADS))
def test_layer_benchmark_equals_native(workload: str, algorithm: str, evaluated: Callable[..., Built]) -> None:
    native, _, _ = evaluated(workload, "native")
    got, _, _ = evaluated(workload, algorithm)
    assert set(got.gradients) == {f"{get_workload(workload).convolutions[0].name}.{p}" for p in ("kernel", "bias")}
    assert_evaluations_match(got, native, workload)


@pytest.fixture(scope="module")
def tie_allowance() -> Callable[[str, int], dict[str, Any]]:
    """Twice the float64 reference's float32 allowance (rounding noise and near-tie envelope)."""
    cache: dict[tuple[str, int], dict[str, Any]] = {}

    def get(workload: str, batch_size: int) -> dict[str, Any]:
        if (workload, batch_size) not in cache:
            reference = reference_evaluate(workload, "", make_batch(workload, batch_size),
                                           verification_weights(workload))
            cache[(workload, batch_size)] = {k: 2 * np.asarray(v) for k, v in reference.allowance.items()}
        return cache[(workload, batch_size)]

    return get


NETWORK_BATCH = {"lenet": 2, "alexnet": 1}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("workload", list(NETWORK_BATCH))
def test_network_equals_native(workload: str, algorithm: str, evaluated: Callable[..., Built],
                               tie_allowance: Callable[[str, int], dict[str, Any]]) -> None:
    batch_size = NETWORK_BATCH[workload]
    native, _, _ = evaluated(workload, "native", batch_size)
    got, _, _ = evaluated(workload, algorithm, batch_size)
    assert_evaluations_match(got, native, workload, allowance=tie_allowance(workload, batch_size))


BF16_LAYER = "conv:alexnet.conv2"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bf16_layer_equals_native(algorithm: str, evaluated: Callable[..., Built]) -> None:
    """bf16 operands, float32 sums: a difference of the final rounding (a bf16 unit, 3.9e-3) at most. The FFT
    transforms run in float32 and report it; the layer's activation and output are bf16."""
    native, _, native_dtypes = evaluated(BF16_LAYER, "native", precision="bf16")
    got, _, dtypes = evaluated(BF16_LAYER, algorithm, precision="bf16")
    assert native_dtypes["activation"] == dtypes["activation"] == dtypes["output"] == "bfloat16"
    assert dtypes.get("fft") == ("float32" if algorithm == "fft" else None)
    assert_evaluations_match(got, native, BF16_LAYER, "bf16")


def test_layer_gradient_pass_computes_the_input_gradient(adapter: JaxAdapter) -> None:
    """The timed gradient pass of a layer benchmark returns the input gradient beside the weights'."""
    results = {}
    for algorithm in ("native", *ALGORITHMS):
        case = adapter.build(request("conv:lenet.conv2", algorithm))
        params, (input_grad,) = case.prepare("gradient")()
        results[algorithm] = np.asarray(input_grad)
        assert set(params) == {"conv2.kernel", "conv2.bias"}
        case.close()
    assert results["native"].shape == make_batch("conv:lenet.conv2", 2).x.shape
    for algorithm in ALGORITHMS:
        assert normwise(results[algorithm], results["native"]) <= tolerance_for("lenet").gradient


# ----- traits -----
@pytest.mark.parametrize("workload", ["conv:lenet.conv2", "lenet"])
def test_traits_name_the_algorithm_and_what_xla_compiled(workload: str, evaluated: Callable[..., Built]) -> None:
    """On this CPU, jaxlib 0.10 hands the native convolutions to YNNPACK (those it takes); the other
    algorithms have no convolution left, only matrix multiplies (and FFTs)."""
    backends = {}
    for algorithm in ("native", *ALGORITHMS):
        _, traits, _ = evaluated(workload, algorithm)
        assert traits["conv"] == algorithm and traits["layout"] == "NHWC"
        backends[algorithm] = set(traits["conv_backend"].split("+"))
    assert "ynnpack:convolution" in backends["native"]
    assert backends["native"] <= {"ynnpack:convolution", "xla:convolution"}
    for algorithm in ("im2col", "direct"):
        assert backends[algorithm] and all(label.endswith(":dot") for label in backends[algorithm])
    assert "xla:fft" in backends["fft"] and not any(":convolution" in label for label in backends["fft"])


def test_workloads_without_convolutions_have_no_conv_traits(adapter: JaxAdapter) -> None:
    case = adapter.build(BuildRequest(get_workload("autoencoder"), "finetune", make_batch("autoencoder", 2),
                                      verification_weights("autoencoder"), "jit", "cpu"))
    try:
        assert "conv" not in case.traits() and "conv_backend" not in case.traits()
    finally:
        case.close()
    with pytest.raises(CaseUnavailable, match="no convolution"):
        adapter.build(BuildRequest(get_workload("lstm"), "", make_batch("lstm", 2), verification_weights("lstm"),
                                   "jit", "cpu", conv="fft"))


# ----- the XLA switch variants -----
def run_child(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


CHILD_TRAITS = """
import json
from dlbench.frameworks.base import BuildRequest
from dlbench.frameworks.jax.adapter import JaxAdapter
from dlbench.verify.biases import verification_weights
from dlbench.workloads import get_workload, make_batch
adapter = JaxAdapter()
adapter.initialize("cpu", 1)
found = {}
for conv in ("native", "im2col"):
    name = "conv:lenet.conv2"
    case = adapter.build(BuildRequest(get_workload(name), "", make_batch(name, 2), verification_weights(name),
                                      "no_ynnpack_conv", "cpu", conv=conv))
    found[conv] = case.traits()["conv_backend"]
print(json.dumps(found))
"""


def test_no_ynnpack_conv_makes_xla_compute_every_convolution(adapter: JaxAdapter,
                                                             evaluated: Callable[..., Built]) -> None:
    """The switch really changes the library: in its own worker's environment the native convolutions are
    XLA's, not YNNPACK's, while the im2col algorithm's matrix multiplies stay with YNNPACK."""
    env = adapter.process_env("cpu", 1, "no_ynnpack_conv")
    assert adapter.own_process("no_ynnpack_conv") and not adapter.own_process("jit")
    child = run_child(CHILD_TRAITS, env)
    assert child.returncode == 0, child.stderr[-2000:]
    found = json.loads(child.stdout.strip().splitlines()[-1])
    assert found["native"] == "xla:convolution"
    assert "ynnpack:dot" in found["im2col"].split("+")
    assert "ynnpack:convolution" in evaluated("conv:lenet.conv2", "native")[1]["conv_backend"]  # default


@pytest.mark.parametrize("variant", list(SWITCH_FLAGS))
def test_every_switch_flag_exists_in_the_installed_jaxlib(variant: str) -> None:
    """jaxlib aborts at start-up on an unknown XLA flag (the control shows it), so a clean start proves the
    flag exists in this version, GPU flags included (XLA parses every flag on every platform)."""
    code = "import jax.numpy as jnp; print(float(jnp.ones(2).sum()))"
    env = {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags(*SWITCH_FLAGS[variant], inherited="")}
    child = run_child(code, env)
    assert child.returncode == 0 and child.stdout.strip() == "2.0", child.stderr[-2000:]
    control = run_child(code, {**env, "XLA_FLAGS": env["XLA_FLAGS"].replace("=", "_not_a_flag=", 1)})
    assert control.returncode != 0 and "Unknown flag" in control.stderr


def test_switch_variants_env_devices_and_workloads(adapter: JaxAdapter) -> None:
    assert adapter.conv_algorithms == ("native", "im2col", "fft", "direct")
    assert adapter.variant_devices == {"no_ynnpack_conv": ("cpu",), "no_autotune": ("gpu",),
                                       "deterministic": ("gpu",)}
    for variant, flags in SWITCH_FLAGS.items():
        assert variant in adapter.variants and variant in adapter.variant_help
        assert adapter.variant_env[variant]["XLA_FLAGS"].split()[-len(flags):] == list(flags)
    assert SWITCH_FLAGS["no_autotune"] == ("--xla_gpu_autotune_level=0",)
    assert SWITCH_FLAGS["deterministic"] == ("--xla_gpu_deterministic_ops=true",)
    # the flags the user already has reach the variant's worker, the variant's own come last and win
    assert xla_flags("--b=1", inherited=" --a=1 ") == "--a=1 --b=1" and xla_flags("--b=1", inherited="") == "--b=1"
    gpu_env = adapter.process_env("gpu", 1, "deterministic")
    assert gpu_env["JAX_PLATFORMS"] == "cuda" and gpu_env["XLA_FLAGS"].endswith("--xla_gpu_deterministic_ops=true")
    for variant in ("no_autotune", "deterministic"):
        with pytest.raises(CaseUnavailable, match="runs on gpu only"):
            adapter.check_request(request("lenet", "native", variant=variant))
    assert adapter.applies("no_ynnpack_conv", "conv:alexnet.conv1") and not adapter.applies("no_ynnpack_conv", "lstm")
    assert adapter.applies("jit_reduce_window", "lenet")
    assert not adapter.applies("jit_reduce_window", "conv:lenet.conv1")  # no pool: it would repeat jit
