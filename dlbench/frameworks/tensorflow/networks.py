"""The canonical networks as TF ops over ``tf.Variable`` objects: the ``_Network`` base with the layers they
share, and LeNet, AlexNet, the stacked autoencoder and the LSTM (the transformer is in
:mod:`dlbench.frameworks.tensorflow.transformer`). A new network is a ``_Network`` subclass in a module of
its own, entered in the adapter's table of networks."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from dlbench.cases.precision import get_precision
from dlbench.cases.spec import NATIVE_CONV
from dlbench.errors import DlbenchError
from dlbench.frameworks.base import BuildRequest
from dlbench.frameworks.tensorflow.bindings import bind_keras_lstm, canonical_variables
from dlbench.frameworks.tensorflow.convolution import conv2d, native_padding
from dlbench.frameworks.tensorflow.precision import keras_policy
from dlbench.frameworks.tensorflow.runtime import Feeds, Tensor, Variable
from dlbench.workloads import DROPOUT_RATE, Batch, pretrain_level

KERAS_LSTM = "keras_lstm"  # the variant that runs keras.layers.LSTM


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
        self.variables: dict[str, Variable] = canonical_variables(tf, request)
        self.shapes: dict[str, tuple[int, ...]] = {name: request.workload.param(name).shape for name in phase.reads}
        # how every convolution is computed (dlbench.frameworks.tensorflow.convolution), and the canonical
        # table of the convolutions (stride, padding) that the algorithms other than native follow
        self.conv_algorithm = request.conv
        self.convolutions = {layer.name: layer for layer in request.workload.convolutions}
        self.conv_dtype = ""  # the traced dtype of the first convolution's output (see probe_dtypes)

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

    def gradient_inputs(self, feeds: Feeds) -> tuple[Tensor, ...]:
        """The feeds whose gradient the gradient pass also computes (none: a network trains its parameters;
        a layer benchmark also computes its input gradient, as a convolution library's backward does)."""
        return ()

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
        """Convolution ``name`` plus its bias: ``tf.nn.conv2d`` for the native algorithm, else the request's
        algorithm with the canonical table's stride and padding (which must be what ``stride`` and
        ``padding`` say: a network written against another table would compare wrong algorithms)."""
        nn = self.tf.nn
        if self.conv_algorithm != NATIVE_CONV:
            layer = self.convolutions[name]
            if (layer.stride, native_padding(layer.k, layer.stride, layer.padding)) != (stride, padding):
                raise DlbenchError(f"{name}: stride {stride} padding {padding} is not the canonical {layer}")
            return self.traced_conv(conv2d(self.tf, self.low(x), self.read(f"{name}.kernel"),
                                           self.read(f"{name}.bias"), layer.stride, layer.padding,
                                           self.conv_algorithm))
        out = nn.conv2d(self.low(x), self.read(f"{name}.kernel"), stride, padding)
        return nn.bias_add(out, self.read(f"{name}.bias"))

    def traced_conv(self, y: Tensor) -> Tensor:
        """``y``, a convolution's output, whose dtype is noted: the activation dtype of an algorithm whose
        first contraction is not the layer's (fft's is a complex einsum in float32 by design)."""
        self.conv_dtype = self.conv_dtype or y.dtype.name
        return y

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
        policy = keras_policy(request.precision)
        layer = keras.layers.LSTM(extra["hidden"], return_sequences=True, dtype=policy, name="keras_lstm")
        n, steps = request.batch.x.shape
        layer.build((n, steps, extra["embed_dim"]))
        self.variables.update(bind_keras_lstm(layer, request.weights))
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
