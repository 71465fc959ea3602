"""The TensorFlow adapter: the canonical workloads written as a competent TF 2 user would write them.

Networks are plain ``tf.Variable`` objects plus ``tf.nn`` ops, in NHWC: the canonical layout of
``docs/workloads.md`` *is* TensorFlow's layout (HWIO convolution kernels, ``[in, out]`` dense kernels, H, W, C
flatten order, LSTM gates i, f, g, o), so the canonical weights load without any permutation and
``evaluate`` hands gradients back unchanged. Keras is not used: it would add a layer of objects and
call overhead to every pass without changing the maths.

Variants (recorded in every result row):

- ``function`` (default): ``tf.function`` graphs (Grappler + oneDNN fusions), the usual way to run TF 2.
- ``xla``: ``tf.function(jit_compile=True)``. Measured slower than ``function`` on CPU for LeNet; it is
  a variant, not the default.
- ``eager``: op-by-op execution, what a user gets without ``tf.function``.

For the graph variants ``prepare`` traces a ``ConcreteFunction`` for the fixed batch shapes (and XLA
compiles on its first call), so tracing and compilation are timed as ``first_call_ms`` and never enter
the samples. Calling the ConcreteFunction directly also skips the tf.function argument binding and
trace-cache lookup on every call, a fixed cost that is noticeable at small batch sizes.

Nothing here imports TensorFlow at module level (see ``dlbench.frameworks.base``); the worker imports it
in :meth:`TensorFlowAdapter.initialize`.
"""

from __future__ import annotations

import gc
import importlib.metadata
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from dlbench.cases.precision import get_precision
from dlbench.errors import DlbenchError
from dlbench.frameworks.base import (
    Adapter,
    BuildRequest,
    BuiltCase,
    CaseUnavailable,
    Evaluation,
    RuntimeInfo,
)
from dlbench.frameworks.cuda_arch import kernel_binaries
from dlbench.machine.capture import cpu_features
from dlbench.workloads import DROPOUT_RATE, PASSES, Batch, check_pass, get_workload, pretrain_level
from dlbench.workloads.definitions import LAYER_NORM_EPSILON, MASK_VALUE

# TensorFlow objects are typed as Any: the module must not import tensorflow, and its stubs add nothing.
Tensor = Any
Variable = Any
Feeds = tuple[Tensor, ...]

VARIANTS: tuple[str, ...] = ("function", "xla", "eager", "keras_attention", "keras_lstm")
KERAS_LSTM = "keras_lstm"
# Op types of cuDNN's fused RNN kernel in a traced graph: their presence is what makes an LSTM "fused".
CUDNN_RNN_OPS = ("CudnnRNN", "CudnnRNNV2", "CudnnRNNV3")


# --------------------------------------------------------------------------------------------------
# Process-level set-up
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Runtime:
    """What ``initialize`` established for this worker process; ``build`` places everything on it."""

    tf: ModuleType
    device: str  # "cpu" | "gpu"

    @property
    def device_name(self) -> str:
        """The ``tf.device`` scope of every variable, input and traced op."""
        return "/GPU:0" if self.device == "gpu" else "/CPU:0"

    @property
    def memory_device(self) -> str:
        """The device name that ``tf.config.experimental.get_memory_info`` expects."""
        return "GPU:0" if self.device == "gpu" else "CPU:0"


def _block_jax_import() -> bool:
    """Stop TensorFlow from importing JAX behind our back; return whether the block was put in place.

    ``tensorflow/lite/python/util.py`` imports JAX whenever it is installed, which adds about 100 MB of
    RSS to every TF worker (docs/measurement.md) and would be billed to TensorFlow's memory numbers. A
    ``None`` entry in ``sys.modules`` makes ``import jax`` raise ImportError, which TF handles. If JAX is
    already imported (a test process, say) we leave it alone: removing a live module breaks its users.
    """
    if "jax" in sys.modules:
        return sys.modules["jax"] is None
    sys.modules["jax"] = None  # type: ignore[assignment]
    return True


def _set_threads(tf: ModuleType, threads: int) -> None:
    """Apply intra-op ``threads`` and one inter-op thread; TF only accepts this before its first op."""
    config = tf.config.threading
    try:
        if config.get_intra_op_parallelism_threads() != threads:
            config.set_intra_op_parallelism_threads(threads)
        if config.get_inter_op_parallelism_threads() != 1:
            config.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        raise DlbenchError(
            f"TensorFlow is already initialised in this process with "
            f"{config.get_intra_op_parallelism_threads()} intra-op threads; "
            f"{threads} threads need their own worker process"
        ) from None


def _configure_devices(tf: ModuleType, device: str) -> None:
    """GPU runs: memory growth (no grab-everything preallocation) and TF32 off (plain float32 matmuls).
    CPU runs hide the GPUs so that no op is silently placed on one."""
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu":
        if not gpus:
            raise CaseUnavailable("TensorFlow sees no GPU (CPU-only build, or no CUDA driver/libraries)")
        for gpu in gpus:
            if not tf.config.experimental.get_memory_growth(gpu):
                tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.experimental.enable_tensor_float_32_execution(False)
    elif gpus and tf.config.get_visible_devices("GPU"):
        tf.config.set_visible_devices([], "GPU")


def _onednn_enabled(tf: ModuleType) -> bool:
    """Whether TF's oneDNN (formerly MKL) kernels are on. TF decides this from its build and
    ``TF_ENABLE_ONEDNN_OPTS``; the private query is the only exact answer, the environment the fallback."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() not in ("0", "false")


def _kernel_binaries(tf: ModuleType, build: Any) -> str:
    """Native kernels for this GPU, or PTX compiled at first use (see :mod:`dlbench.frameworks.cuda_arch`):
    TensorFlow's pip wheels carry cubins for a few capabilities and PTX for the newest only."""
    try:
        gpu = tf.config.list_physical_devices("GPU")[0]
        major, minor = tf.config.experimental.get_device_details(gpu)["compute_capability"]
    except (IndexError, KeyError, TypeError, ValueError):
        return "unknown"
    return kernel_binaries((int(major), int(minor)), build.get("cuda_compute_capabilities") or ())


def _runtime_info(tf: ModuleType, device: str, jax_blocked: bool) -> RuntimeInfo:
    build = tf.sysconfig.get_build_info()
    backends = {"onednn": "on" if _onednn_enabled(tf) else "off"}
    for key, label in (("cuda_version", "cuda"), ("cudnn_version", "cudnn")):
        if build.get(key):
            backends[label] = str(build[key])
    settings = {
        "interop_threads": str(tf.config.threading.get_inter_op_parallelism_threads()),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "jax_import_blocked": "yes" if jax_blocked else "no (jax was already imported)",
        "eager_execution": "synchronous" if tf.config.experimental.get_synchronous_execution() else "async",
    }
    if device == "gpu":
        settings["tf32"] = "off" if not tf.config.experimental.tensor_float_32_execution_enabled() else "on"
        settings["memory_growth"] = "on"
        settings["kernel_binaries"] = _kernel_binaries(tf, build)
    devices = ("cpu", "gpu") if tf.config.get_visible_devices("GPU") else ("cpu",)
    return RuntimeInfo(
        framework="tensorflow",
        version=str(tf.__version__),
        threads=int(tf.config.threading.get_intra_op_parallelism_threads()),
        devices=devices,
        backends=backends,
        settings=settings,
    )


# --------------------------------------------------------------------------------------------------
# The canonical networks
# --------------------------------------------------------------------------------------------------


class _Network:
    """One canonical network phase as TF ops over ``tf.Variable`` objects in canonical layout.

    Only the variables the phase uses are created, trainable exactly when the phase trains them: the
    GradientTape then watches just those, so frozen encoders cost no backward work, and the trainable
    count can be checked against the canonical one. ``training`` below means "apply dropout".
    """

    def __init__(self, tf: ModuleType, request: BuildRequest) -> None:
        self.tf = tf
        # Mixed precision the way Keras' mixed_bfloat16 / mixed_float16 policies do it: float32 variables
        # (the master weights), each read cast to the compute dtype, layer inputs cast to it, and the
        # loss (with its softmax) and reductions in float32. In float32 every tf.cast below is a no-op.
        self.compute = tf.as_dtype(get_precision(request.precision).compute)
        phase = request.workload.phase(request.phase)
        self.trainable_names: tuple[str, ...] = phase.trainable
        self.variables: dict[str, Variable] = {
            name: tf.Variable(
                np.asarray(request.weights[name], dtype=np.float32),
                trainable=name in phase.trainable,
                name=name,
            )
            for name in phase.reads
        }
        self.shapes: dict[str, tuple[int, ...]] = {name: request.workload.param(name).shape for name in phase.reads}

    def feed_arrays(self, batch: Batch) -> tuple[np.ndarray, ...]:
        """The batch arrays the network consumes, labels last."""
        return batch.x, batch.y

    def forward(self, feeds: Feeds, training: bool) -> Tensor:
        """The output of the forward pass: logits, or a pretraining phase's reconstruction."""
        raise NotImplementedError

    def objective(self, feeds: Feeds, training: bool) -> tuple[Tensor, Tensor]:
        """(output, loss) of the phase; the default is classification with integer labels."""
        logits = self.forward(feeds, training)
        return logits, self.cross_entropy(logits, feeds[-1])

    @property
    def has_loops(self) -> bool:
        """True when the graph holds a loop, whose body a static FLOP count would count only once."""
        return False

    # ----- shared pieces -----
    def read(self, name: str) -> Tensor:
        """A variable as the layers use it: cast to the compute dtype (Keras' AutoCastVariable)."""
        return self.tf.cast(self.variables[name], self.compute)

    def low(self, x: Tensor) -> Tensor:
        """A layer input in the compute dtype (Keras casts the inputs of every layer under a policy)."""
        return self.tf.cast(x, self.compute)

    def cross_entropy(self, logits: Tensor, labels: Tensor) -> Tensor:
        tf = self.tf
        logits = tf.cast(logits, tf.float32)  # float32 softmax and loss, as Keras recommends
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))

    def dense(self, x: Tensor, name: str) -> Tensor:
        # bias_add (not +) is what Grappler's remapper fuses with MatMul (and a following ReLU).
        return self.tf.nn.bias_add(self.tf.matmul(self.low(x), self.read(f"{name}.kernel")),
                                   self.read(f"{name}.bias"))

    def conv(self, x: Tensor, name: str, stride: int, padding: str) -> Tensor:
        nn = self.tf.nn
        out = nn.conv2d(self.low(x), self.read(f"{name}.kernel"), stride, padding)
        return nn.bias_add(out, self.read(f"{name}.bias"))

    def dropout(self, x: Tensor, training: bool) -> Tensor:
        return self.tf.nn.dropout(x, rate=DROPOUT_RATE) if training else x

    def flatten(self, x: Tensor) -> Tensor:
        # Reshaping NHWC gives the canonical H, W, C order. The batch size is static in every trace.
        return self.tf.reshape(x, [x.shape[0], -1])


class _LeNet(_Network):
    def forward(self, feeds: Feeds, training: bool) -> Tensor:
        tf = self.tf
        h = tf.nn.max_pool2d(tf.tanh(self.conv(feeds[0], "conv1", 1, "VALID")), 2, 2, "VALID")
        h = tf.nn.max_pool2d(tf.tanh(self.conv(h, "conv2", 1, "VALID")), 2, 2, "VALID")
        h = tf.nn.relu(self.dense(self.flatten(h), "fc1"))
        return self.dense(h, "fc2")


class _AlexNet(_Network):
    """AlexNet of docs/workloads.md. 'SAME' padding of the stride-1 5x5 and 3x3 convolutions is exactly the
    canonical pad 2 / pad 1, and is the form oneDNN and cuDNN handle best."""

    def forward(self, feeds: Feeds, training: bool) -> Tensor:
        tf = self.tf
        relu = tf.nn.relu

        def pool(x: Tensor) -> Tensor:
            return tf.nn.max_pool2d(x, 3, 2, "VALID")

        h = pool(relu(self.conv(feeds[0], "conv1", 4, "VALID")))
        h = pool(relu(self.conv(h, "conv2", 1, "SAME")))
        h = relu(self.conv(h, "conv3", 1, "SAME"))
        h = relu(self.conv(h, "conv4", 1, "SAME"))
        h = pool(relu(self.conv(h, "conv5", 1, "SAME")))
        h = self.dropout(relu(self.dense(self.flatten(h), "fc6")), training)
        h = self.dropout(relu(self.dense(h, "fc7")), training)
        return self.dense(h, "fc8")


class _Autoencoder(_Network):
    """Stacked autoencoder with tied decoders. A pretraining phase k runs the frozen encoders 1..k-1
    (non-trainable variables, so the tape ignores them), then encoder k and its tied decoder."""

    def __init__(self, tf: ModuleType, request: BuildRequest) -> None:
        self.level = pretrain_level(request.phase)
        super().__init__(tf, request)

    def encode(self, x: Tensor, depth: int) -> Tensor:
        for i in range(1, depth + 1):
            x = self.tf.sigmoid(self.dense(x, f"enc{i}"))
        return x

    def reconstruct(self, h: Tensor) -> Tensor:
        tf, k = self.tf, self.level
        code = tf.sigmoid(self.dense(h, f"enc{k}"))
        decoded = tf.matmul(code, self.read(f"enc{k}.kernel"), transpose_b=True)
        return tf.sigmoid(tf.nn.bias_add(decoded, self.read(f"dec{k}.bias")))

    def forward(self, feeds: Feeds, training: bool) -> Tensor:
        if self.level:
            return self.reconstruct(self.encode(feeds[0], self.level - 1))
        return self.dense(self.encode(feeds[0], 3), "classifier")

    def objective(self, feeds: Feeds, training: bool) -> tuple[Tensor, Tensor]:
        if not self.level:
            return super().objective(feeds, training)
        tf = self.tf
        target = self.encode(feeds[0], self.level - 1)
        rebuilt = self.reconstruct(target)
        diff = tf.cast(rebuilt, tf.float32) - tf.cast(target, tf.float32)
        loss = tf.reduce_sum(tf.square(diff)) / (2.0 * target.shape[0])
        return rebuilt, loss


class _Lstm(_Network):
    """Embedding, one LSTM layer over all steps, masked mean pooling, dropout, classifier.

    The input projection of all steps is one large matmul before the loop, leaving only the recurrent
    matmul inside it; the loop is ``tf.scan``, whose gradient was measured much faster than those of a
    Python-unrolled loop (which also takes minutes to XLA-compile) and of a ``tf.while_loop`` accumulating the
    pooled sum, at equal forward cost. The embedding gradient is TF's native ``IndexedSlices`` (what every TF
    optimizer consumes); ``evaluate`` densifies it.
    """

    def __init__(self, tf: ModuleType, request: BuildRequest) -> None:
        super().__init__(tf, request)
        self.keras_lstm: Any = None
        if request.variant == KERAS_LSTM:
            self._use_keras_lstm(request)

    def _use_keras_lstm(self, request: BuildRequest) -> None:
        """``keras.layers.LSTM`` with its defaults (tanh/sigmoid, no recurrent dropout, not unrolled, with
        bias), the configuration for which Keras runs cuDNN's fused kernel on a GPU and its own loop on a
        CPU. Its kernel ``[in, 4H]``, recurrent kernel ``[H, 4H]`` and bias ``[4H]`` have the canonical
        shapes and gate order (i, f, c, o), so the canonical weights load unchanged; the tf.Variables it
        reads replace ours in ``variables``, so that the tape and the parameter count see them. Mixed
        precision is the layer's own dtype policy (``mixed_bfloat16``/``mixed_float16``)."""
        import keras  # noqa: PLC0415  (only in the worker, only for this variant)

        extra = request.workload.extra
        compute = get_precision(request.precision).compute
        policy = "float32" if compute == "float32" else f"mixed_{compute}"
        layer = keras.layers.LSTM(extra["hidden"], return_sequences=True, dtype=policy, name="keras_lstm")
        n, steps = request.batch.x.shape
        layer.build((n, steps, extra["embed_dim"]))
        for name, variable in (("input_kernel", layer.cell.kernel), ("recurrent_kernel", layer.cell.recurrent_kernel),
                               ("bias", layer.cell.bias)):
            variable.assign(np.asarray(request.weights[f"lstm.{name}"], np.float32))
            self.variables[f"lstm.{name}"] = variable.value
        self.keras_lstm = layer

    def feed_arrays(self, batch: Batch) -> tuple[np.ndarray, ...]:
        if batch.mask is None:
            raise DlbenchError("the lstm workload needs a batch with sequence lengths")
        return batch.x, batch.mask, batch.y

    @property
    def has_loops(self) -> bool:
        return True

    def forward(self, feeds: Feeds, training: bool) -> Tensor:
        if self.keras_lstm is not None:
            return self._keras_forward(feeds, training)
        tf, v = self.tf, self.variables
        tokens, mask = feeds[0], feeds[1]
        n, steps = tokens.shape
        hidden = v["lstm.recurrent_kernel"].shape[0]
        # Keras' Embedding looks up the float32 table and casts the rows it returns
        embedded = self.low(tf.nn.embedding_lookup(v["embedding.table"], tokens))
        flat = tf.reshape(embedded, [n * steps, -1])
        # bias added in float32 and the sum rounded once (as JAX's float32 accumulation does): the bias
        # gradient is then a float32 sum over all N x T steps, not a bf16 one that loses the small total
        summed_in = tf.matmul(flat, self.read("lstm.input_kernel"))
        projected = self.low(tf.nn.bias_add(tf.cast(summed_in, tf.float32), v["lstm.bias"]))
        time_major = tf.transpose(tf.reshape(projected, [n, steps, 4 * hidden]), [1, 0, 2])
        recurrent = self.read("lstm.recurrent_kernel")

        def step(carry: tuple[Tensor, Tensor], gates_in: Tensor) -> tuple[Tensor, Tensor]:
            h, c = carry
            i, f, g, o = tf.split(gates_in + tf.matmul(h, recurrent), 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return tf.sigmoid(o) * tf.tanh(c), c

        zeros = tf.zeros([n, hidden], dtype=self.compute)
        states, _ = tf.scan(step, time_major, initializer=(zeros, zeros))
        # the pooled sum over time in float32 (torch and JAX promote to the float32 mask's dtype here)
        summed = tf.reduce_sum(tf.cast(states, tf.float32) * tf.transpose(mask)[:, :, None], axis=0)
        pooled = summed / tf.reduce_sum(mask, axis=1, keepdims=True)
        return self.dense(self.dropout(pooled, training), "classifier")

    def _keras_forward(self, feeds: Feeds, training: bool) -> Tensor:
        """All T steps through the Keras layer (no Keras mask: as in the other variants the mask only
        selects what is averaged, and a mask would also keep cuDNN from running), then the same pooling."""
        tf = self.tf
        tokens, mask = feeds[0], feeds[1]
        embedded = self.low(tf.nn.embedding_lookup(self.variables["embedding.table"], tokens))
        states = self.keras_lstm(embedded)  # [N, T, H]
        summed = tf.reduce_sum(tf.cast(states, tf.float32) * mask[:, :, None], axis=1)
        pooled = summed / tf.reduce_sum(mask, axis=1, keepdims=True)
        return self.dense(self.dropout(pooled, training), "classifier")


def gelu(tf: ModuleType, x: Tensor) -> Tensor:
    """Exact (erf) GELU; ``tf.nn.gelu``'s default is already ``approximate=False``, said explicitly."""
    return tf.nn.gelu(x, approximate=False)


def plain_attention(tf: ModuleType, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
    """``[N, heads, T, head_dim]`` projections: matmul, additive key-padding bias, softmax over the keys,
    matmul. TensorFlow has no fused attention op of its own; this is what ``tf.nn`` users write. Under mixed
    precision the scores are computed in the compute dtype and the mask, the softmax and its normalisation
    in float32 (the float32 ``bias``); the probabilities are cast back for the second product. In float32
    the casts are no-ops."""
    scale = 1.0 / float(np.sqrt(int(q.shape[-1])))
    scores = tf.cast(tf.matmul(q, k, transpose_b=True) * tf.cast(scale, q.dtype), tf.float32) + bias
    return tf.matmul(tf.cast(tf.nn.softmax(scores, axis=-1), v.dtype), v)


class _Transformer(_Network):
    """Pre-LN encoder classifier. The residual stream is kept as ``[N*T, D]`` so that every projection is
    one 2-D MatMul + BiasAdd (what Grappler fuses); it is viewed as ``[N, heads, T, head_dim]`` only for
    the attention. The key-padding mask is an additive bias of -1e9 on padded keys. The embedding gradient
    is TF's ``IndexedSlices``, as for the LSTM.

    Mixed precision: the embeddings, the residual stream, the layer norms (statistics and output) and the
    pooling are float32; each projection casts its input and variables to the compute dtype (``dense``),
    and its output is cast back to float32 where it joins the residual stream. That is the recipe PyTorch's
    autocast produces for the same code, so all three frameworks compute the same mixed function."""

    def used_params(self, phase: str) -> tuple[str, ...]:
        return tuple(p.name for p in get_workload("transformer").params)

    def feed_arrays(self, batch: Batch) -> tuple[np.ndarray, ...]:
        if batch.mask is None:
            raise DlbenchError("the transformer workload needs a batch with sequence lengths")
        return batch.x, batch.mask, batch.y

    def layer_norm(self, x: Tensor, name: str) -> Tensor:
        """Float32 in every precision: ``x`` is the float32 residual stream, gamma and beta float32."""
        tf, v = self.tf, self.variables
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return tf.nn.batch_normalization(x, mean, variance, v[f"{name}.beta"], v[f"{name}.gamma"],
                                         LAYER_NORM_EPSILON)

    def __init__(self, tf: ModuleType, request: BuildRequest) -> None:
        super().__init__(tf, request)
        self.keras_attention: dict[str, Any] = {}
        if request.variant == "keras_attention":
            self._use_keras_attention(request)

    def _use_keras_attention(self, request: BuildRequest) -> None:
        """One ``keras.layers.MultiHeadAttention`` per layer, its Q, K, V, O variables loaded from the
        canonical ones: its ``EinsumDense`` kernels ``[256, 4, 64]`` and ``[4, 64, 256]`` are the canonical
        ``[256, 256]`` kernels reshaped (heads are consecutive blocks of 64 columns), and the gradients
        reshape back the same way. The tf.Variables it reads replace ours in ``variables``, so that the
        tape and the parameter count see them."""
        import keras  # noqa: PLC0415  (only in the worker, only for this variant)

        extra = request.workload.extra
        width, heads = extra["embed_dim"], extra["heads"]
        n, steps = request.batch.x.shape
        # Mixed precision the Keras way: a mixed policy (float32 variables, compute-dtype inputs and
        # arithmetic); Keras' dot-product attention computes its softmax in float32 whatever the policy.
        compute = get_precision(request.precision).compute
        policy = "float32" if compute == "float32" else f"mixed_{compute}"
        for i in range(extra["layers"]):
            mha = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads, name=f"layer{i}_mha",
                                                  dtype=policy)
            mha.build(query_shape=(n, steps, width), value_shape=(n, steps, width))
            for part, layer in (("query", mha.query_dense), ("key", mha.key_dense), ("value", mha.value_dense),
                                ("output", mha.output_dense)):
                for kind in ("kernel", "bias"):
                    variable = getattr(layer, kind)
                    name = f"layer{i}.attn.{part}.{kind}"
                    variable.assign(np.reshape(np.asarray(request.weights[name], np.float32), variable.shape))
                    self.variables[name] = variable.value
            self.keras_attention[f"layer{i}"] = mha

    def attention_block(self, x: Tensor, prefix: str, n: int, steps: int, mask: Tensor, bias: Tensor) -> Tensor:
        """Projections, attention and output projection of one layer on the ``[N*T, D]`` stream."""
        tf = self.tf
        mha = self.keras_attention.get(prefix)
        if mha is not None:
            x3 = tf.reshape(x, [n, steps, -1])
            keep = tf.broadcast_to((mask > 0)[:, None, :], [n, steps, steps])  # [N, queries, keys]
            return tf.cast(tf.reshape(mha(x3, x3, attention_mask=keep), [n * steps, -1]), tf.float32)
        out = self.dense(self.attention(x, prefix, n, steps, bias), f"{prefix}.attn.output")
        return tf.cast(out, tf.float32)  # joins the float32 residual stream

    def attention(self, x: Tensor, prefix: str, n: int, steps: int, bias: Tensor) -> Tensor:
        tf = self.tf
        heads = get_workload("transformer").extra["heads"]

        def split(t: Tensor) -> Tensor:
            return tf.transpose(tf.reshape(t, [n, steps, heads, -1]), [0, 2, 1, 3])

        q, k, val = (split(self.dense(x, f"{prefix}.attn.{part}")) for part in ("query", "key", "value"))
        context = plain_attention(tf, q, k, val, bias)
        return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [n * steps, -1])

    def forward(self, feeds: Feeds, training: bool) -> Tensor:
        tf, v = self.tf, self.variables
        tokens, mask = feeds[0], feeds[1]
        n, steps = tokens.shape
        extra = get_workload("transformer").extra
        embedded = tf.nn.embedding_lookup(v["embedding.table"], tokens) + v["position.table"][:steps]
        h = tf.reshape(embedded, [n * steps, -1])
        bias = ((1.0 - mask) * MASK_VALUE)[:, None, None, :]
        for i in range(extra["layers"]):
            prefix = f"layer{i}"
            h = h + self.attention_block(self.layer_norm(h, f"{prefix}.ln1"), prefix, n, steps, mask, bias)
            hidden = gelu(tf, self.dense(self.layer_norm(h, f"{prefix}.ln2"), f"{prefix}.ff1"))
            h = h + tf.cast(self.dense(hidden, f"{prefix}.ff2"), tf.float32)
        final = tf.reshape(self.layer_norm(h, "final_ln"), [n, steps, -1])
        pooled = tf.reduce_sum(final * mask[:, :, None], axis=1) / tf.reduce_sum(mask, axis=1, keepdims=True)
        return self.dense(pooled, "classifier")


_NETWORKS: dict[str, type[_Network]] = {
    "lenet": _LeNet,
    "alexnet": _AlexNet,
    "autoencoder": _Autoencoder,
    "lstm": _Lstm,
    "transformer": _Transformer,
}


# --------------------------------------------------------------------------------------------------
# The built case
# --------------------------------------------------------------------------------------------------


@dataclass
class _Compiled:
    """The callables of one built case, traced once per pass and reused by later ``prepare`` calls."""

    passes: dict[str, Callable[..., Any]] = field(default_factory=dict)
    graphs: dict[str, Any] = field(default_factory=dict)  # pass -> ConcreteFunction, for FLOP counting


class TensorFlowCase(BuiltCase):
    """A canonical network built on TF variables, with its batch already on the device."""

    def __init__(
        self, runtime: _Runtime, network: _Network, feeds: Feeds, variant: str, dropout: bool,
        loss_scale: float = 1.0,
    ) -> None:
        self._rt = runtime
        self._loss_scale = loss_scale
        self._net = network
        self._feeds = feeds
        self._variant = variant
        self._dropout = dropout
        self._trainable = [network.variables[name] for name in network.trainable_names]
        self._compiled = _Compiled()
        self._memory_counter = True
        self._dtypes: dict[str, str] = {}
        self._traits: dict[str, str] = {}

    @property
    def trainable_params(self) -> int:
        return sum(int(v.shape.num_elements()) for v in self._net.variables.values() if v.trainable)

    # ----- the passes, as plain Python over TF ops -----
    def _forward(self, *feeds: Tensor) -> Tensor:
        return self._net.forward(feeds, training=False)

    def _scaled_gradient(self, feeds: Feeds, training: bool) -> tuple[Tensor, Tensor, list[Tensor]]:
        """(output, loss, gradients). With a loss scale (fp16) the tape differentiates the scaled loss and
        the float32 gradients are unscaled, as Keras' LossScaleOptimizer does (without its dynamic
        adjustment); IndexedSlices keep their sparse form."""
        tf, scale = self._rt.tf, self._loss_scale
        with tf.GradientTape() as tape:
            output, loss = self._net.objective(feeds, training=training)
            scaled = loss * scale if scale != 1.0 else loss
        grads = tape.gradient(scaled, self._trainable)
        if scale != 1.0:
            grads = [_unscale(tf, g, 1.0 / scale) for g in grads]
        return output, loss, grads

    def _gradient(self, *feeds: Tensor) -> list[Tensor]:
        return self._scaled_gradient(feeds, self._dropout)[2]

    def _evaluation(self, *feeds: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        output, loss, grads = self._scaled_gradient(feeds, False)
        return tf_float32(self._rt.tf, output), loss, [self._rt.tf.convert_to_tensor(g) for g in grads]

    def _python_pass(self, pass_: str) -> Callable[..., Any]:
        passes: dict[str, Callable[..., Any]] = {
            "forward": self._forward,
            "gradient": self._gradient,
            "evaluate": self._evaluation,
        }
        return passes[pass_]

    def _trace(self, pass_: str, jit_compile: bool) -> Any:
        """Trace ``pass_`` into a ConcreteFunction for the fixed input shapes (autograph off: the code
        has no data-dependent Python control flow to convert)."""
        tf = self._rt.tf
        if pass_ not in self._compiled.graphs:
            fn = tf.function(self._python_pass(pass_), jit_compile=jit_compile, autograph=False)
            with tf.device(self._rt.device_name):
                self._compiled.graphs[pass_] = fn.get_concrete_function(*self._feeds)
        return self._compiled.graphs[pass_]

    def _callable(self, pass_: str) -> Callable[..., Any]:
        if pass_ in self._compiled.passes:
            return self._compiled.passes[pass_]
        if self._variant == "eager":
            tf, device_name, python = self._rt.tf, self._rt.device_name, self._python_pass(pass_)

            def run_eager(*feeds: Tensor) -> Any:
                with tf.device(device_name):
                    return python(*feeds)

            fn: Callable[..., Any] = run_eager
        else:
            fn = self._trace(pass_, jit_compile=self._variant == "xla")
        self._compiled.passes[pass_] = fn
        return fn

    def note_dtype(self, what: str, dtype: str) -> None:
        self._dtypes[what] = dtype

    def probe_dtypes(self) -> None:
        """Dtypes read from a throwaway trace of the forward pass (kept apart from the traces ``prepare``
        makes, so that the first call still pays its own tracing): the output's, and the output dtype of
        the graph's first convolution or matmul op. The same trace gives the traits (BuiltCase.traits): the
        convolutions' ``data_format`` as written, and whether the LSTM is cuDNN's fused RNN op (which Keras
        chooses on a GPU, inside its layer, and which a fallback would silently replace by a loop)."""
        tf = self._rt.tf
        fn = tf.function(self._forward, autograph=False)
        with tf.device(self._rt.device_name):
            graph_fn = fn.get_concrete_function(*self._feeds)
        seen = {"output": graph_fn.structured_outputs.dtype.name}
        operations = graph_fn.graph.get_operations()
        for op in operations:
            if op.type in CONTRACTION_OPS:
                seen["activation"] = op.outputs[0].dtype.name
                break
        self._dtypes = seen
        self._traits = graph_traits(graph_fn.graph, isinstance(self._net, _Lstm))

    # ----- BuiltCase protocol -----
    def prepare(self, pass_: str) -> Callable[[], Any]:
        check_pass(pass_)
        fn, feeds = self._callable(pass_), self._feeds
        return lambda: fn(*feeds)

    def sync(self, handle: Any) -> None:
        """GPU kernels run asynchronously on streams: wait for all of them (no copy to the host). On the
        CPU a ConcreteFunction call, and each eager op (eager execution is synchronous by default), returns
        only after its outputs are computed, so there is nothing to wait for."""
        if self._rt.device == "gpu":
            self._rt.tf.test.experimental.sync_devices()

    def evaluate(self) -> Evaluation:
        output, loss, grads = self._callable("evaluate")(*self._feeds)
        names = self._net.trainable_names
        return Evaluation(
            output=np.asarray(output.numpy()),
            loss=float(loss.numpy()),
            gradients={name: np.asarray(g.numpy()).reshape(self._net.shapes[name])
                       for name, g in zip(names, grads, strict=True)},
        )

    def dtypes(self) -> dict[str, str]:
        return dict(self._dtypes)

    def traits(self) -> dict[str, str]:
        return dict(self._traits)

    def reset_peak_memory(self) -> None:
        if not self._memory_counter:
            return
        try:
            self._rt.tf.config.experimental.reset_memory_stats(self._rt.memory_device)
        except ValueError:  # the device's allocator keeps no statistics
            self._memory_counter = False

    def peak_memory_bytes(self, pass_: str) -> int | None:
        """Peak bytes of TF's allocator on the device since the last reset; includes the live variables
        and inputs (allocated before the reset), as TF's own counter does."""
        if not self._memory_counter:
            return None
        try:
            return int(self._rt.tf.config.experimental.get_memory_info(self._rt.memory_device)["peak"])
        except ValueError:
            return None

    def framework_flops(self, pass_: str) -> float | None:
        """FLOPs of the traced graph by TF's (v1) graph profiler. None for graphs with loops (the LSTM's
        scan body would be counted once instead of once per step) and when the profiler fails."""
        if self._net.has_loops or pass_ not in PASSES:
            return None
        tf = self._rt.tf
        profiler = tf.compat.v1.profiler
        options = profiler.ProfileOptionBuilder(profiler.ProfileOptionBuilder.float_operation())
        logger = tf.get_logger()
        level = logger.level
        logger.setLevel("ERROR")  # the v1 API logs a deprecation notice
        try:
            graph = self._trace(pass_, jit_compile=False).graph
            flops = profiler.profile(graph, options=options.with_empty_output().build()).total_float_ops
        except Exception:  # noqa: BLE001  an optional statistic must never fail the measured case
            return None
        finally:
            logger.setLevel(level)
        return float(flops) if flops else None

    def close(self) -> None:
        self._compiled = _Compiled()
        self._trainable = []
        self._net.variables.clear()
        self._feeds = ()
        gc.collect()


# --------------------------------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------------------------------


class TensorFlowAdapter(Adapter):
    """TensorFlow 2 (``tf.function`` by default, XLA and eager as variants)."""

    name: ClassVar[str] = "tensorflow"
    display_name: ClassVar[str] = "TensorFlow"
    module: ClassVar[str] = "tensorflow"
    distributions: ClassVar[tuple[str, ...]] = (
        "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"
    )
    variants: ClassVar[tuple[str, ...]] = VARIANTS
    default_variant: ClassVar[str] = "function"
    variant_workloads: ClassVar[dict[str, tuple[str, ...]]] = {"keras_attention": ("transformer",),
                                                               KERAS_LSTM: ("lstm",)}
    precisions: ClassVar[tuple[str, ...]] = ("float32", "tf32", "bf16", "fp16")
    variant_help: ClassVar[dict[str, str]] = {
        "function": "tf.function graphs (Grappler, oneDNN fusions): how TF 2 is normally run",
        "xla": "tf.function(jit_compile=True): XLA-compiled graphs",
        "eager": "op-by-op eager execution, no tf.function",
        "keras_attention": "transformer only: tf.function with keras.layers.MultiHeadAttention for the "
                           "attention instead of plain tf ops",
        KERAS_LSTM: "lstm only: tf.function with keras.layers.LSTM, which runs cuDNN's fused kernel on a GPU "
                    "(the default tf.scan loop is unfused) and Keras' own loop on a CPU",
    }

    def __init__(self) -> None:
        self._runtime: _Runtime | None = None

    def installed_distribution(self) -> str | None:
        """The first of :attr:`distributions` that pip has installed."""
        for dist in self.distributions:
            try:
                importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
            return dist
        return None

    def supports_gpu_build(self) -> bool:
        """``tensorflow-cpu`` wheels contain no CUDA kernels; every other distribution may."""
        dist = self.installed_distribution()
        return dist is not None and dist != "tensorflow-cpu"

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        """Quiet C++ logging (the info banners), and the thread counts and GPU memory growth also as
        environment, so that they hold from the moment TF loads, before ``initialize`` repeats them."""
        env = {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": "1",
        }
        if device == "gpu":
            env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        return env

    def device_memory_in_use(self, device: str) -> int | None:
        """``get_memory_info(device)["current"]``: bytes TensorFlow's allocator has handed out now."""
        if device != "gpu" or self._runtime is None:
            return None
        try:
            return int(self._runtime.tf.config.experimental.get_memory_info(self._runtime.memory_device)["current"])
        except ValueError:
            return None

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        jax_blocked = _block_jax_import()  # must precede the TensorFlow import
        import tensorflow as tf  # noqa: PLC0415  (heavy: only ever in the worker)

        _set_threads(tf, threads)
        _configure_devices(tf, device)
        tf.constant(0.0)  # first op: the runtime starts with the settings above, so reading back is honest
        self._runtime = _Runtime(tf=tf, device=device)
        return _runtime_info(tf, device, jax_blocked)

    def _build(self, request: BuildRequest) -> TensorFlowCase:
        runtime = self._runtime
        if runtime is None:
            raise RuntimeError("TensorFlowAdapter.initialize() must run before build()")
        if request.device != runtime.device:
            raise RuntimeError(f"worker initialised for {runtime.device}, case asks for {request.device}")
        network_type = _NETWORKS.get(request.workload.name)
        if network_type is None:
            raise CaseUnavailable(f"no TensorFlow implementation of workload {request.workload.name!r}")
        tf = runtime.tf
        problem = _precision_problem(tf, request.precision, request.device)
        if problem is not None:
            raise CaseUnavailable(problem)
        if request.device == "gpu":  # process-wide; the cases of a worker are built and run one at a time
            tf.config.experimental.enable_tensor_float_32_execution(request.precision == "tf32")
        with tf.device(runtime.device_name):
            network = network_type(tf, request)
            feeds = tuple(tf.identity(tf.constant(a))
                          for a in device_feed_arrays(network.feed_arrays(request.batch), request.device))
        loss_scale = get_precision(request.precision).loss_scale
        case = TensorFlowCase(runtime, network, feeds, request.variant, request.dropout, loss_scale)
        try:
            case.probe_dtypes()
        except Exception as exc:  # noqa: BLE001  e.g. no kernel for a low-precision op on this device
            if request.precision == "float32":
                raise
            raise CaseUnavailable(f"TensorFlow cannot build this network in {request.precision} on "
                                  f"{request.device}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        if request.precision == "tf32":
            case.note_dtype("matmul", "tf32")
        return case


CONTRACTION_OPS = ("Conv2D", "MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")


def graph_op_types(graph: Any) -> set[str]:
    """The op types of a traced graph and of every function it calls (loop bodies, Keras' cuDNN branch)."""
    types = {op.type for op in graph.get_operations()}
    for function in getattr(graph, "_functions", {}).values():
        definition = getattr(function, "definition", None)
        if definition is not None:
            types.update(node.op for node in definition.node_def)
    return types


def graph_traits(graph: Any, recurrent: bool) -> dict[str, str]:
    """``layout`` of the convolutions as traced (``data_format``; on a GPU Grappler's layout optimizer may
    still run them as NCHW) and, for the LSTM, ``recurrence``: fused when cuDNN's RNN op is in the graph."""
    traits: dict[str, str] = {}
    for op in graph.get_operations():
        if op.type == "Conv2D":
            traits["layout"] = op.get_attr("data_format").decode()
            break
    if recurrent:
        fused = bool(graph_op_types(graph) & set(CUDNN_RNN_OPS))
        traits["recurrence"] = "fused" if fused else "unfused"
    return traits


def device_feed_arrays(arrays: Sequence[np.ndarray], device: str) -> tuple[np.ndarray, ...]:
    """The batch arrays as they are placed on ``device``: on a GPU, integer arrays (labels, token ids)
    become int64. TensorFlow keeps int32 tensors in host memory even under ``/GPU:0`` (a legacy of its
    shape tensors), so int32 labels and token ids would be copied to the device inside every timed call;
    int64 ones live on the GPU. On a CPU there is no copy either way and the canonical int32 stays."""
    if device != "gpu":
        return tuple(arrays)
    return tuple(a.astype(np.int64) if np.issubdtype(a.dtype, np.integer) else a for a in arrays)


def tf_float32(tf: ModuleType, x: Tensor) -> Tensor:
    """``x`` as float32 for the host (NumPy has no bfloat16)."""
    return tf.cast(x, tf.float32)


def _unscale(tf: ModuleType, grad: Any, factor: float) -> Any:
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * factor, grad.indices, grad.dense_shape)
    return grad * factor


# CPU features with which TensorFlow's oneDNN runs each low precision (TF's IsDataTypeSupportedByOneDNNOnThisCPU
# in tensorflow/core/util/util.cc, which has no Python binding; the /proc/cpuinfo names of those features).
ONEDNN_CPU_FEATURES: dict[str, tuple[str, ...]] = {
    "bf16": ("avx512f", "avx_ne_convert", "amx_bf16"),
    "fp16": ("avx512_fp16", "amx_fp16", "avx_ne_convert"),
}


def _precision_problem(tf: ModuleType, precision: str, device: str) -> str | None:
    """Why this device cannot run ``precision`` in TensorFlow (None if it can).

    CPU: without the CPU features oneDNN needs, TF falls back to Eigen kernels (it logs so); for float16
    they made AlexNet's gradient 14x slower than float32 here, a cost no user would accept, so such a CPU
    is reported as lacking the precision rather than measured."""
    needs = ONEDNN_CPU_FEATURES.get(precision)
    if device == "cpu" and needs is not None:
        if not cpu_features() & set(needs):
            return (f"TensorFlow's oneDNN has {precision} kernels only on CPUs with {', '.join(needs)}; "
                    "this CPU has none of them (TF would fall back to slow Eigen kernels)")
        return None
    if device == "gpu" and precision in ("tf32", "bf16"):
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        major = (details.get("compute_capability") or (0, 0))[0]
        if major < 8:
            return f"{precision} needs an NVIDIA GPU of compute capability 8.0 or later, this one is {major}.x"
    return None


def _check_weights(request: BuildRequest) -> None:
    """Every canonical parameter must be present with its canonical shape: loading is a plain copy."""
    for spec in request.workload.params:
        weight = request.weights.get(spec.name)
        if weight is None:
            raise RuntimeError(f"weights for {request.workload.name} lack {spec.name!r}")
        if tuple(weight.shape) != spec.shape:
            raise RuntimeError(f"weight {spec.name!r} has shape {tuple(weight.shape)}, expected {spec.shape}")


def gradient_shapes(handle: Sequence[Any]) -> list[tuple[int, ...]]:
    """Dense shapes of a gradient handle (tensors or IndexedSlices), without copying data to the host."""
    return [tuple(int(d) for d in g.shape) for g in handle]
