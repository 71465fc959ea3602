"""The JAX adapter: the canonical networks written in plain JAX (``jax.numpy``, ``jax.lax``, ``jax.nn``).

Why no Flax or Equinox: the install stays lean (``jax`` alone), and the parameters are a plain dict keyed
by the canonical names in the canonical layout (HWIO convolution kernels, ``[in, out]`` dense kernels,
LSTM kernels ``[in, 4H]`` with gate order i, f, g, o). Loading the canonical weights and mapping the
gradients back is then the identity, and nothing sits between the network and XLA: what is timed is what
``jax.jit`` compiles from these few functions, which is what a competent JAX user writes by hand.

Timing fairness:

* ``prepare`` compiles ahead of time (``jit(f).lower(*args).compile()``), so the runner's ``first_call_ms``
  holds tracing and XLA compilation, and every sample calls the compiled executable on arguments that
  were placed on the device once in ``build``. The gradient pass returns the gradient pytree, left on the
  device; ``sync`` waits for it (JAX dispatches asynchronously on CPU too).
* The forward pass is inference (no dropout). The gradient pass is ``jax.grad`` of the loss w.r.t. the
  phase's trainable parameters only; the frozen encoders of the autoencoder's pretraining phases are
  separate, non-differentiated arguments, so XLA computes no gradient for them. Dropout draws from a fixed
  ``jax.random`` key passed as an argument, which keeps the compiled function pure; every call does the
  same amount of random-number work as with a fresh key.
* Variants: ``jit`` writes the non-overlapping 2x2 max pools of LeNet as reshape + max, whose gradient is
  much cheaper on CPU than that of ``lax.reduce_window`` (docs/measurement.md); ``jit_reduce_window``
  uses ``lax.reduce_window`` everywhere, for comparison. AlexNet's overlapping 3x3/2 pools use
  ``lax.reduce_window`` in both. Both compute the transformer's attention with
  ``jax.nn.dot_product_attention`` (JAX's own attention function; XLA picks its implementation);
  ``plain_attention`` writes it as einsum, masked softmax, einsum (transformer only; other workloads are
  ``unavailable`` in that variant).
* The transformer's GELU is ``jax.nn.gelu(approximate=False)``: JAX's default is the tanh approximation,
  another function than the canonical exact GELU.

Threads: JAX has no thread API and ignores the XLA thread flags, so the runner pins the worker to N cores
with ``sched_setaffinity`` before JAX is imported; this adapter sets no thread flag and reports the affinity
it finds. fp32 means fp32: the default matmul precision is ``highest`` (no TF32 on GPU).

This module imports no framework at module level (see ``dlbench.frameworks.base``): JAX is imported in
``initialize``/``build`` and inside the network functions, which run only while JAX traces them.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dlbench.cases.precision import FLOAT32_PARAMS, get_precision
from dlbench.frameworks.base import (
    Adapter,
    BuildRequest,
    BuiltCase,
    CaseUnavailable,
    Evaluation,
    RuntimeInfo,
    check_device,
)
from dlbench.workloads import DROPOUT_RATE, check_pass, get_workload, pretrain_level
from dlbench.workloads.definitions import LAYER_NORM_EPSILON, MASK_VALUE

if TYPE_CHECKING:
    import jax

    Array = jax.Array
else:
    Array = Any

Params = Mapping[str, Array]
Inputs = tuple[Array, ...]
PoolFn = Callable[[Array], Array]

CONV_DIMS = ("NHWC", "HWIO", "NHWC")
TRANSFORMER = get_workload("transformer")
# Variants that only change the transformer's attention (other workloads: unavailable).
ATTENTION_VARIANTS: tuple[str, ...] = ("plain_attention",)
MATMUL_PRECISION = "highest"
# jax_default_matmul_precision per dlbench precision (read when a function is traced): float32 in full,
# TF32 where asked for; for bf16/fp16 operands the "default" lets XLA use the native low-precision units.
MATMUL_PRECISIONS: dict[str, str] = {"float32": "highest", "tf32": "tensorfloat32"}
CUDA_PLUGIN_DISTRIBUTIONS = ("jax-cuda13-plugin", "jax-cuda12-plugin")
# The share of GPU memory JAX's allocator may use. Without preallocation JAX still caps its BFC allocator at
# 75% of the device, while PyTorch's caching allocator and TensorFlow (memory growth) may take nearly all of
# it: at 0.95 a case that does not fit is ``oom`` at about the same size in all three. The name is JAX's
# current one; the deprecated XLA_PYTHON_CLIENT_MEM_FRACTION is blanked, since jaxlib refuses both at once.
GPU_MEMORY_FRACTION = "0.95"
GPU_MEMORY_ENV: dict[str, str] = {"XLA_CLIENT_MEM_FRACTION": GPU_MEMORY_FRACTION,
                                  "XLA_PYTHON_CLIENT_MEM_FRACTION": ""}
_WHILE_LOOP = re.compile(r"\bwhile\(")  # an HLO while instruction in Compiled.as_text()
# jax.random's scopes in HLO metadata op_names: the threefry bit generator loops inside them
_PRNG_SCOPE = re.compile(r"threefry|random_bits|jit\(_uniform\)|jit\(_bernoulli\)")


# ----------------------------------------------------------------------------------------------------
# Layers. Pure functions of arrays; jax is imported inside because this module must stay import-free.
# ----------------------------------------------------------------------------------------------------
def matmul(x: Array, kernel: Array) -> Array:
    """``x @ kernel`` in the kernel's dtype (the input is cast to it, as Flax's ``promote_dtype`` does), with
    float32 accumulation: under mixed precision the operands are bf16/fp16, the products summed in float32
    and the result rounded back once. In float32 every cast is a no-op."""
    import jax.numpy as jnp

    x = x.astype(kernel.dtype)
    return jnp.matmul(x, kernel, preferred_element_type=jnp.float32).astype(kernel.dtype)


def dense(params: Params, name: str, x: Array) -> Array:
    import jax.numpy as jnp

    kernel = params[f"{name}.kernel"]
    out = jnp.matmul(x.astype(kernel.dtype), kernel, preferred_element_type=jnp.float32)
    return (out + params[f"{name}.bias"]).astype(kernel.dtype)  # bias added before the one rounding


def conv(params: Params, name: str, x: Array, stride: int = 1, pad: int = 0) -> Array:
    """NHWC input, HWIO kernel (the canonical layout, so the kernel is used as stored); accumulation and
    bias in float32, as in :func:`dense`."""
    import jax.numpy as jnp
    from jax import lax

    kernel = params[f"{name}.kernel"]
    out = lax.conv_general_dilated(
        x.astype(kernel.dtype), kernel, (stride, stride), [(pad, pad), (pad, pad)], dimension_numbers=CONV_DIMS,
        preferred_element_type=jnp.float32,
    )
    return (out + params[f"{name}.bias"]).astype(kernel.dtype)


def max_pool_reshape_2x2(x: Array) -> Array:
    """Non-overlapping 2x2/2 max pool as reshape + max: its gradient is a cheap select, unlike the
    scatter that reduce_window's gradient lowers to on CPU."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def max_pool_window(x: Array, size: int, stride: int) -> Array:
    """Max pool over ``size`` x ``size`` windows with ``stride`` (valid padding) via ``lax.reduce_window``."""
    from jax import lax

    init = np.array(-np.inf, x.dtype)  # a concrete constant: JAX then knows the max monoid (and its gradient)
    return lax.reduce_window(x, init, lax.max, (1, size, size, 1), (1, stride, stride, 1), "VALID")


def max_pool_window_2x2(x: Array) -> Array:
    return max_pool_window(x, 2, 2)


def dropout(x: Array, key: Array | None, rate: float = DROPOUT_RATE) -> Array:
    """Inverted dropout; ``key`` None means inference (identity)."""
    if key is None:
        return x
    import jax
    import jax.numpy as jnp

    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def cross_entropy(logits: Array, labels: Array) -> Array:
    """Sparse softmax cross-entropy, mean over the batch; softmax and loss in float32 in every precision."""
    import jax
    import jax.numpy as jnp

    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


def reconstruction_loss(reconstruction: Array, target: Array) -> Array:
    """The autoencoder pretraining loss of docs/workloads.md: sum((x' - x)^2) / (2 * batch)."""
    import jax.numpy as jnp

    diff = reconstruction.astype(jnp.float32) - target.astype(jnp.float32)
    return jnp.sum(diff**2) / (2.0 * target.shape[0])


# ----------------------------------------------------------------------------------------------------
# Networks. Each maps (params, inputs, dropout key or None) to its output.
# ----------------------------------------------------------------------------------------------------
def lenet(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
    import jax
    import jax.numpy as jnp

    (x,) = inputs
    x = pool(jnp.tanh(conv(params, "conv1", x)))
    x = pool(jnp.tanh(conv(params, "conv2", x)))
    x = x.reshape(x.shape[0], -1)  # NHWC flatten = the canonical H, W, C order
    x = jax.nn.relu(dense(params, "fc1", x))
    return dense(params, "fc2", x)


def alexnet(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
    """``pool`` is unused: AlexNet's 3x3/2 pools overlap, so every variant uses reduce_window."""
    import jax

    (x,) = inputs
    relu = jax.nn.relu
    x = max_pool_window(relu(conv(params, "conv1", x, stride=4)), 3, 2)
    x = max_pool_window(relu(conv(params, "conv2", x, pad=2)), 3, 2)
    x = relu(conv(params, "conv3", x, pad=1))
    x = relu(conv(params, "conv4", x, pad=1))
    x = max_pool_window(relu(conv(params, "conv5", x, pad=1)), 3, 2)
    x = x.reshape(x.shape[0], -1)
    key6, key7 = (None, None) if key is None else tuple(jax.random.split(key))
    x = dropout(relu(dense(params, "fc6", x)), key6)
    x = dropout(relu(dense(params, "fc7", x)), key7)
    return dense(params, "fc8", x)


def encode(params: Params, x: Array, levels: int) -> Array:
    """The first ``levels`` sigmoid encoders of the stacked autoencoder."""
    import jax

    for i in range(1, levels + 1):
        x = jax.nn.sigmoid(dense(params, f"enc{i}", x))
    return x


def pretrain_pair(params: Params, x: Array, level: int) -> tuple[Array, Array]:
    """(reconstruction, target) of pretraining phase ``level``: the target is the frozen encoding below
    it, the decoder reuses the transpose of the encoder kernel (tied) with its own bias."""
    import jax

    target = encode(params, x, level - 1)
    hidden = jax.nn.sigmoid(dense(params, f"enc{level}", target))
    recon = jax.nn.sigmoid(matmul(hidden, params[f"enc{level}.kernel"].T) + params[f"dec{level}.bias"])
    return recon, target


def finetune(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
    (x,) = inputs
    return dense(params, "classifier", encode(params, x, 3))


def lstm(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
    """Embedding, one LSTM layer as ``lax.scan`` over time (input projection of all steps done as one
    matmul before the scan), mean of the hidden states over the valid steps, dropout, classifier."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    tokens, mask = inputs
    embedded = jnp.take(params["embedding.table"], tokens, axis=0)  # [N, T, D]
    projected = matmul(embedded, params["lstm.input_kernel"]) + params["lstm.bias"]  # [N, T, 4H]
    recurrent = params["lstm.recurrent_kernel"]
    hidden = recurrent.shape[0]

    def step(carry: tuple[Array, Array], z_in: Array) -> tuple[tuple[Array, Array], Array]:
        h, c = carry
        z = z_in + matmul(h, recurrent)
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((tokens.shape[0], hidden), projected.dtype)
    _, states = lax.scan(step, (zeros, zeros), jnp.swapaxes(projected, 0, 1))  # [T, N, H]
    weights = jnp.swapaxes(mask, 0, 1)[:, :, None]  # float32: the pooled sum over time is float32
    pooled = jnp.sum(states * weights, axis=0) / jnp.sum(mask, axis=1, keepdims=True)
    return dense(params, "classifier", dropout(pooled, key))


def layer_norm(params: Params, name: str, x: Array) -> Array:
    """Layer norm over the last axis with the canonical epsilon (1e-5)."""
    import jax.numpy as jnp
    from jax import lax

    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    variance = jnp.mean(jnp.square(centred), axis=-1, keepdims=True)
    return centred * lax.rsqrt(variance + LAYER_NORM_EPSILON) * params[f"{name}.gamma"] + params[f"{name}.beta"]


def gelu(x: Array) -> Array:
    """Exact (erf) GELU. ``jax.nn.gelu`` defaults to the tanh approximation: ``approximate=False`` is needed."""
    import jax

    return jax.nn.gelu(x, approximate=False)


def fused_attention(q: Array, k: Array, v: Array, keep: Array) -> Array:
    """``jax.nn.dot_product_attention`` on ``[N, T, heads, head_dim]`` with the boolean key-padding mask
    ``[N, 1, 1, T]`` (True = attend); its default scale is 1/sqrt(head_dim)."""
    import jax

    return jax.nn.dot_product_attention(q, k, v, mask=keep)


def plain_attention(q: Array, k: Array, v: Array, keep: Array) -> Array:
    """Einsum, masked softmax over the keys, einsum; the same ``[N, T, heads, head_dim]`` layout. Both
    products accumulate in float32 and round once to the operands' dtype; the softmax is float32 in every
    precision and its probabilities are cast back for the second product (no-ops in float32)."""
    import jax
    import jax.numpy as jnp

    f32 = jnp.float32
    scores = jnp.einsum("nthd,nshd->nhts", q, k, preferred_element_type=f32).astype(q.dtype)
    scores = scores / jnp.sqrt(jnp.asarray(q.shape[-1], q.dtype))
    probs = jax.nn.softmax(jnp.where(keep, scores, MASK_VALUE).astype(f32), axis=-1).astype(v.dtype)
    return jnp.einsum("nhts,nshd->nthd", probs, v, preferred_element_type=f32).astype(v.dtype)


def transformer(params: Params, inputs: Inputs, fused: bool) -> Array:
    """Token + learned position embeddings, pre-LN encoder layers, final layer norm, mean over the valid
    tokens, classifier (workloads.md). The attention function is looked up when JAX traces, so that tests
    can substitute deliberately wrong ones. The residual stream is kept as ``[N*T, D]`` (the layout of the
    plain implementations and of the TF adapter): with ``[N, T, D]`` XLA's CPU backward of the projections
    did measurably more work than plain JAX (``benchmarks/transformer_plain.py``).

    Mixed precision: the embedding tables and the layer norms' gamma and beta stay float32
    (:data:`dlbench.cases.precision.FLOAT32_PARAMS`), so the residual stream (float32 + a compute-dtype projection
    promotes to float32), the layer norms and the pooling are float32, while :func:`dense` casts each
    projection's input to its compute-dtype kernel. That is the recipe PyTorch's autocast gives the same
    network, so the three frameworks compute the same mixed function."""
    import jax.numpy as jnp

    extra = TRANSFORMER.extra
    heads, layers = extra["heads"], extra["layers"]
    tokens, mask = inputs
    n, steps = tokens.shape
    embedded = jnp.take(params["embedding.table"], tokens, axis=0) + params["position.table"][:steps]
    h = embedded.reshape(n * steps, -1)  # the residual stream as [N*T, D]: every projection one 2-D GEMM
    keep = (mask > 0)[:, None, None, :]
    for i in range(layers):
        prefix = f"layer{i}"
        a = layer_norm(params, f"{prefix}.ln1", h)
        q, k, v = (dense(params, f"{prefix}.attn.{part}", a).reshape(n, steps, heads, -1)
                   for part in ("query", "key", "value"))
        context = (fused_attention if fused else plain_attention)(q, k, v, keep)
        h = h + dense(params, f"{prefix}.attn.output", context.reshape(n * steps, -1))
        hidden = gelu(dense(params, f"{prefix}.ff1", layer_norm(params, f"{prefix}.ln2", h)))
        h = h + dense(params, f"{prefix}.ff2", hidden)
    final = layer_norm(params, "final_ln", h).reshape(n, steps, -1)
    pooled = jnp.sum(final * mask[:, :, None], axis=1) / jnp.sum(mask, axis=1, keepdims=True)
    return dense(params, "classifier", pooled)


# ----------------------------------------------------------------------------------------------------
# The (workload, phase) table.
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Network:
    """One (workload, phase): its forward function and its loss (the parameters it reads are the
    phase's ``reads`` in the workload definition). Under mixed precision every parameter is cast to the
    compute dtype except those whose names end with one of ``float32_params``."""

    output: Callable[[Params, Inputs, Array | None, PoolFn], Array]
    objective: Callable[[Params, Inputs, Array, Array | None, PoolFn], Array]
    uses_dropout: bool
    float32_params: tuple[str, ...] = ()



def _classifier_objective(
    output: Callable[[Params, Inputs, Array | None, PoolFn], Array],
) -> Callable[[Params, Inputs, Array, Array | None, PoolFn], Array]:
    def objective(params: Params, inputs: Inputs, labels: Array, key: Array | None, pool: PoolFn) -> Array:
        return cross_entropy(output(params, inputs, key, pool), labels)

    return objective


def _pretrain_network(level: int) -> Network:
    def output(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
        return pretrain_pair(params, inputs[0], level)[0]

    def objective(params: Params, inputs: Inputs, labels: Array, key: Array | None, pool: PoolFn) -> Array:
        return reconstruction_loss(*pretrain_pair(params, inputs[0], level))

    return Network(output, objective, uses_dropout=False)


def _transformer_network(fused: bool) -> Network:
    def output(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
        return transformer(params, inputs, fused)

    return Network(output, _classifier_objective(output), uses_dropout=False,
                   float32_params=FLOAT32_PARAMS["transformer"])


def network_for(workload: str, phase: str, variant: str) -> Network:
    """The network of ``workload``/``phase`` in ``variant``; CaseUnavailable for a workload this adapter does
    not know (a plugin may add workloads that only some adapters implement)."""
    if workload == "transformer":
        return _transformer_network(fused=variant not in ATTENTION_VARIANTS)
    classifiers = {"lenet": (lenet, False), "alexnet": (alexnet, True), "lstm": (lstm, True)}
    if workload in classifiers:
        fn, uses_dropout = classifiers[workload]
        return Network(fn, _classifier_objective(fn), uses_dropout)
    if workload == "autoencoder":
        if phase == "finetune":
            return Network(finetune, _classifier_objective(finetune), uses_dropout=False)
        if pretrain_level(phase):
            return _pretrain_network(pretrain_level(phase))
    raise CaseUnavailable(f"the JAX adapter does not implement workload {workload!r} phase {phase!r}")


POOLS: dict[str, PoolFn] = {"jit": max_pool_reshape_2x2, "jit_reduce_window": max_pool_window_2x2,
                            "plain_attention": max_pool_reshape_2x2}


# ----------------------------------------------------------------------------------------------------
# The built case.
# ----------------------------------------------------------------------------------------------------
def _flops_from_cost(cost: Any) -> float | None:
    """``Compiled.cost_analysis()`` returned a list of dicts in older JAX and a dict in newer ones."""
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not isinstance(cost, Mapping) or "flops" not in cost:
        return None
    flops = float(cost["flops"])
    return flops if flops > 0 else None


def _has_float_loop(hlo: str) -> bool:
    """Whether the compiled HLO has a while loop that does floating-point work (``lax.scan``). The loops
    of the threefry random-bit generator behind dropout are integer bit mixing, negligible next to the
    network, so they are ignored (recognised by the jax.random scope in their metadata; should a JAX
    version name them differently, the answer is a conservative None, never a wrong count)."""
    return any(_WHILE_LOOP.search(line) and not _PRNG_SCOPE.search(line) for line in hlo.splitlines())


CONTRACTIONS = ("conv_general_dilated", "dot_general")


def _first_contraction_dtype(jaxpr: Any) -> str | None:
    """Operand dtype of the first convolution or matmul in a jaxpr, searching nested jaxprs in order."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in CONTRACTIONS:
            return str(eqn.invars[0].aval.dtype)
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", value)  # ClosedJaxpr -> Jaxpr
            if hasattr(inner, "eqns"):
                found = _first_contraction_dtype(inner)
                if found is not None:
                    return found
    return None


CONV_WORKLOADS = ("lenet", "alexnet")


def jax_traits(workload: str) -> dict[str, str]:
    """The convolutions take NHWC arrays (``CONV_DIMS``; XLA may choose another physical layout on a GPU),
    and the LSTM is a ``lax.scan`` loop: unfused (see BuiltCase.traits)."""
    if workload in CONV_WORKLOADS:
        return {"layout": CONV_DIMS[0]}
    if workload == "lstm":
        return {"recurrence": "unfused"}
    return {}


class JaxBuiltCase(BuiltCase):
    """A canonical network with its parameters, batch and dropout key resident on one JAX device."""

    def __init__(self, request: BuildRequest, network: Network, device: Any) -> None:
        import jax

        precision = get_precision(request.precision)
        self._compute = precision.compute  # dtype the float32 master parameters are cast to in each call
        self._loss_scale = precision.loss_scale
        self._matmul_precision = MATMUL_PRECISIONS.get(request.precision, "default")
        self._network = network
        self._pool = POOLS[request.variant]
        self._device = device
        self._traits = jax_traits(request.workload.name)
        phase = request.workload.phase(request.phase)
        self._trainable_names = phase.trainable
        trainable = {name: np.asarray(request.weights[name], dtype=np.float32) for name in phase.trainable}
        frozen = {name: np.asarray(request.weights[name], dtype=np.float32) for name in phase.frozen}
        self._trainable: dict[str, Array] = jax.device_put(trainable, device)
        self._frozen: dict[str, Array] = jax.device_put(frozen, device)
        batch = request.batch
        host_inputs: tuple[np.ndarray, ...] = (batch.x,) if batch.mask is None else (batch.x, batch.mask)
        self._inputs: Inputs = tuple(jax.device_put(a, device) for a in host_inputs)
        self._labels: Array = jax.device_put(np.asarray(batch.y, dtype=np.int32), device)
        wants_dropout = request.dropout and network.uses_dropout
        self._key: Array | None = jax.device_put(jax.random.key(0), device) if wants_dropout else None
        self._compiled: dict[str, Any] = {}

    # ----- the pure functions that get compiled -----
    def _cast(self, params: Params, inputs: Inputs) -> tuple[Params, Inputs]:
        """Mixed precision: the float32 master parameters and the float inputs, cast to the compute dtype
        inside the compiled function (so gradients flow back to float32), except the network's
        ``float32_params``. Integer tokens and the sequence workloads' float32 mask stay as they are (the
        mask makes the pooled sum over time float32)."""
        if self._compute == "float32":
            return params, inputs
        keep = self._network.float32_params
        cast = {name: value if keep and name.endswith(keep) else value.astype(self._compute)
                for name, value in params.items()}
        first = inputs[0] if inputs[0].dtype.kind != "f" else inputs[0].astype(self._compute)
        return cast, (first, *inputs[1:])

    def _forward(self, trainable: Params, frozen: Params, inputs: Inputs) -> Array:
        params, inputs = self._cast({**trainable, **frozen}, inputs)
        return self._network.output(params, inputs, None, self._pool)

    def _loss(
        self, trainable: Params, frozen: Params, inputs: Inputs, labels: Array, key: Array | None
    ) -> Array:
        params, inputs = self._cast({**trainable, **frozen}, inputs)
        return self._network.objective(params, inputs, labels, key, self._pool)

    def _gradient(
        self, trainable: Params, frozen: Params, inputs: Inputs, labels: Array, key: Array | None
    ) -> Any:
        """``jax.grad`` of the loss; with a loss scale (fp16) the scaled loss is differentiated and the
        float32 gradients are unscaled in the same compiled function (a static scale, as in jmp)."""
        import jax

        if self._loss_scale == 1.0:
            return jax.grad(self._loss)(trainable, frozen, inputs, labels, key)
        scale = self._loss_scale

        def scaled(*args: Any) -> Array:
            return self._loss(*args) * scale

        grads = jax.grad(scaled)(trainable, frozen, inputs, labels, key)
        return jax.tree_util.tree_map(lambda g: g * (1.0 / scale), grads)

    def _pass(self, pass_: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if pass_ == "forward":
            return self._forward, (self._trainable, self._frozen, self._inputs)
        if pass_ == "gradient":
            args = (self._trainable, self._frozen, self._inputs, self._labels, self._key)
            return self._gradient, args
        raise AssertionError(pass_)  # unreachable: prepare checked the name

    def _compile(self, pass_: str, fresh: bool = False) -> Any:
        """Ahead-of-time compiled executable of ``pass_``, kept for the memory and FLOP queries."""
        import jax

        if fresh or pass_ not in self._compiled:
            fn, args = self._pass(pass_)
            with jax.default_matmul_precision(self._matmul_precision):
                self._compiled[pass_] = jax.jit(fn).lower(*args).compile()
        return self._compiled[pass_]

    def dtypes(self) -> dict[str, str]:
        """From the traced forward program itself: the operand dtype of its first convolution or matmul
        (what the arithmetic runs in; its float32 accumulator is rounded back right after) and the dtype of
        the output. Tracing only, nothing is compiled or run."""
        import jax

        closed = jax.make_jaxpr(self._forward)(self._trainable, self._frozen, self._inputs)
        seen = {"output": str(closed.out_avals[0].dtype)}
        operand = _first_contraction_dtype(closed.jaxpr)
        if operand is not None:
            seen["activation"] = operand
        if self._matmul_precision == "tensorfloat32":
            seen["matmul"] = "tf32"
        return seen

    def lowering_problem(self) -> str | None:
        """Why XLA refuses the forward program for this backend (None if it lowers). A throwaway lowering,
        nothing compiled: e.g. ``jax.nn.dot_product_attention`` asks float16 operands for the
        ``F16_F16_F32`` dot algorithm, which XLA's CPU backend rejects."""
        import jax

        try:
            with jax.default_matmul_precision(self._matmul_precision):
                jax.jit(self._forward).lower(self._trainable, self._frozen, self._inputs)
        except ValueError as exc:
            return str(exc).splitlines()[0]
        return None

    # ----- BuiltCase -----
    def traits(self) -> dict[str, str]:
        return dict(self._traits)

    @property
    def trainable_params(self) -> int:
        return sum(int(np.prod(a.shape)) for a in self._trainable.values())

    def prepare(self, pass_: str) -> Callable[[], Any]:
        """Trace and compile here, always (even if a memory or FLOP query compiled the pass before), so
        that ``first_call_ms`` holds the full cost of a first call whatever order the runner uses."""
        check_pass(pass_)
        compiled = self._compile(pass_, fresh=True)
        _, args = self._pass(pass_)

        def run() -> Any:
            return compiled(*args)

        return run

    def sync(self, handle: Any) -> None:
        import jax

        jax.block_until_ready(handle)

    def evaluate(self) -> Evaluation:
        """Dropout off whatever the request said, so that every framework computes the same function."""
        import jax

        output = self._compile("forward")(self._trainable, self._frozen, self._inputs)
        args = (self._trainable, self._frozen, self._inputs, self._labels, None)
        with jax.default_matmul_precision(self._matmul_precision):
            loss = jax.jit(self._loss)(*args)
            grads = jax.jit(self._gradient)(*args)  # the timed gradient's recipe, loss scale included
        host_grads = jax.device_get(grads)
        return Evaluation(
            output=np.asarray(jax.device_get(output), dtype=np.float32),
            loss=float(loss),
            gradients={name: np.asarray(host_grads[name]) for name in self._trainable_names},
        )

    def peak_memory_bytes(self, pass_: str) -> int | None:
        """XLA's static buffer assignment of the compiled executable, on every device: argument + output +
        temporary bytes minus aliased bytes, i.e. the device memory the pass needs while it runs.

        Not the allocator's ``peak_bytes_in_use`` on a GPU: that is a process-lifetime high-water mark that
        JAX cannot reset, so after the first large case of a worker every later, smaller case would have no
        reading of its own. The static figure is the same on every run and every device order, includes the
        live parameters and batch (the arguments), and excludes what the allocator adds (fragmentation,
        cuDNN/cuBLAS workspaces that XLA does not assign)."""
        try:
            stats = self._compile(pass_).memory_analysis()
        except Exception:  # an optional counter must never fail a case
            return None
        if stats is None:
            return None
        return int(
            stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
            - stats.alias_size_in_bytes
        )

    def framework_flops(self, pass_: str) -> float | None:
        """XLA's cost analysis of the compiled executable. None where the backend does not provide it, and
        None for a program with a loop (``lax.scan``): XLA counts a while loop's body once, not once per
        iteration (the LSTM's recurrent matmuls would be undercounted 100x), and a wrong count is worse
        than none."""
        try:
            compiled = self._compile(pass_)
            if _has_float_loop(compiled.as_text() or ""):
                return None
            return _flops_from_cost(compiled.cost_analysis())
        except Exception:  # an optional counter must never fail a case
            return None

    def close(self) -> None:
        import jax

        self._compiled.clear()
        buffers = (self._trainable, self._frozen, self._inputs, self._labels, self._key)
        for leaf in jax.tree_util.tree_leaves(buffers):
            leaf.delete()
        self._trainable, self._frozen, self._inputs, self._key = {}, {}, (), None


# ----------------------------------------------------------------------------------------------------
# The adapter.
# ----------------------------------------------------------------------------------------------------
def _cuda_versions() -> dict[str, str]:
    """CUDA runtime, driver and cuDNN versions as the JAX CUDA plugin sees them (empty without one).
    Uses ``jax._src.lib.cuda_versions``, JAX's own hook for this; guarded because it is private."""
    try:
        from jax._src.lib import cuda_versions
    except ImportError:
        return {}
    if cuda_versions is None:
        return {}
    found: dict[str, str] = {}
    probes = (
        ("cuda_runtime", "cuda_runtime_get_version"),
        ("cuda_driver", "cuda_driver_get_version"),
        ("cudnn", "cudnn_get_version"),
    )
    for key, attr in probes:
        try:
            found[key] = str(getattr(cuda_versions, attr)())
        except Exception:  # version probes are informative only
            continue
    return found


def _jax_platforms(device: str) -> str:
    """``JAX_PLATFORMS`` for a worker: only the requested platform, so that a CPU run on a GPU machine
    does not initialise CUDA."""
    check_device(device)
    return "cpu" if device == "cpu" else "cuda"


class JaxAdapter(Adapter):
    """JAX on CPU or CUDA, compiled with ``jax.jit`` ahead of time."""

    name: ClassVar[str] = "jax"
    display_name: ClassVar[str] = "JAX"
    module: ClassVar[str] = "jax"
    distributions: ClassVar[tuple[str, ...]] = ("jax",)
    variants: ClassVar[tuple[str, ...]] = ("jit", "jit_reduce_window", "plain_attention")
    default_variant: ClassVar[str] = "jit"
    variant_workloads: ClassVar[dict[str, tuple[str, ...]]] = {v: ("transformer",) for v in ATTENTION_VARIANTS}
    precisions: ClassVar[tuple[str, ...]] = ("float32", "tf32", "bf16", "fp16")
    variant_help: ClassVar[dict[str, str]] = {
        "jit": "jax.jit, ahead-of-time compiled; non-overlapping 2x2 max pools as reshape + max; "
               "transformer attention by jax.nn.dot_product_attention",
        "jit_reduce_window": "jax.jit, ahead-of-time compiled; every max pool via lax.reduce_window",
        "plain_attention": "transformer only: jax.jit, attention as einsum, masked softmax, einsum "
                           "instead of jax.nn.dot_product_attention",
    }

    def supports_gpu_build(self) -> bool:
        """A CUDA plugin distribution is installed, or an old-style jaxlib with ``+cuda`` in its version."""
        for dist in CUDA_PLUGIN_DISTRIBUTIONS:
            try:
                importlib.metadata.version(dist)
                return True
            except importlib.metadata.PackageNotFoundError:
                continue
        try:
            return "cuda" in importlib.metadata.version("jaxlib")
        except importlib.metadata.PackageNotFoundError:
            return False

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        """No thread flag (JAX ignores them; the runner pins affinity). No preallocation, so that GPU
        memory is measurable; only the requested platform, so that a CPU run on a GPU machine does not
        initialise CUDA; fp32 matmuls in full precision."""
        env = {
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
            "JAX_PLATFORMS": _jax_platforms(device),
            "JAX_DEFAULT_MATMUL_PRECISION": MATMUL_PRECISION,
        }
        if device == "gpu":
            env.update(GPU_MEMORY_ENV)
        return env

    def device_memory_in_use(self, device: str) -> int | None:
        """The GPU allocator's ``bytes_in_use`` (``Device.memory_stats()``; None on a CPU)."""
        if device != "gpu":
            return None
        import jax

        stats = jax.devices("gpu")[0].memory_stats() or {}
        value = stats.get("bytes_in_use")
        return int(value) if value is not None else None

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        import jax
        import jaxlib

        platform = device  # dlbench's device names are JAX's platform names
        jax.config.update("jax_default_matmul_precision", MATMUL_PRECISION)
        try:
            devices = jax.devices(platform)
        except RuntimeError as exc:
            raise RuntimeError(
                f"JAX has no {platform} backend here ({exc}); "
                "install a CUDA build of JAX, e.g. pip install 'jax[cuda12]'"
            ) from exc
        seen = []
        for candidate in ("cpu", "gpu"):
            try:
                if jax.devices(candidate):
                    seen.append(candidate)
            except RuntimeError:
                continue
        affinity = len(os.sched_getaffinity(0))
        backends = {"jaxlib": jaxlib.__version__, "xla_platform": str(devices[0].client.platform_version)}
        if platform == "gpu":
            backends.update(_cuda_versions())
            backends["device_kind"] = str(devices[0].device_kind)
        settings = {
            "platform": platform,
            "matmul_precision": str(jax.config.jax_default_matmul_precision),  # type: ignore[attr-defined]
            "affinity_cores": str(affinity),
            "requested_threads": str(threads),
            "thread_control": "cpu affinity (JAX has no thread API)",
        }
        if platform == "gpu":
            settings["preallocate"] = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "true (JAX default)")
            settings["memory_fraction"] = (os.environ.get("XLA_CLIENT_MEM_FRACTION")
                                           or os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION") or "0.75 (JAX default)")
        return RuntimeInfo("jax", jax.__version__, affinity, tuple(seen), backends, settings)

    def _build(self, request: BuildRequest) -> BuiltCase:
        import jax

        network = network_for(request.workload.name, request.phase, request.variant)
        platform = request.device
        try:
            device = jax.devices(platform)[0]
        except RuntimeError as exc:
            raise CaseUnavailable(f"JAX has no {platform} device here") from exc
        if request.precision == "tf32":
            capability = float(getattr(device, "compute_capability", "0") or 0)
            if capability < 8:
                raise CaseUnavailable(f"TF32 needs an NVIDIA GPU of compute capability 8.0 or later, not {capability}")
        case = JaxBuiltCase(request, network, device)
        if get_precision(request.precision).mixed:
            problem = case.lowering_problem()
            if problem is not None:
                case.close()
                raise CaseUnavailable(f"JAX cannot run this network in {request.precision} on {platform}: {problem}")
        return case
