"""Framework-neutral definitions of the five canonical networks.

Each workload lists its parameters in the canonical layout (HWIO convolution kernels, ``[in, out]``
dense kernels, LSTM kernels ``[in, 4H]`` with gate order i, f, g, o, attention kernels ``[in, out]`` with
the heads as consecutive column blocks) and its layers' multiply-accumulates.
Parameter counts and MACs are *derived* from these tables so that the tests can check them against the
numbers printed in ``docs/workloads.md``, and every adapter can check the model it built against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from dlbench.errors import SuiteError

# The two timed passes: inference (``forward``) and one training step's gradients (``gradient``).
PASSES: tuple[str, ...] = ("forward", "gradient")
# Dropout of AlexNet's fc6/fc7 and of the LSTM's pooled state, active in the gradient pass only.
DROPOUT_RATE = 0.5
# Layer widths of the stacked autoencoder: input, then the three encoders' outputs.
AUTOENCODER_SIZES: tuple[int, ...] = (784, 400, 200, 100)
PRETRAIN_PREFIX = "pretrain"


@dataclass(frozen=True)
class ParamSpec:
    """One trainable tensor in the canonical layout."""

    name: str
    shape: tuple[int, ...]
    init: str = "glorot_uniform"  # or "zeros", "ones" (layer-norm gamma), "small" or "positive" (weights.py)

    @property
    def size(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True)
class Phase:
    """A separately timed part of a workload (the autoencoder's pretraining stages and fine-tuning)."""

    name: str
    trainable: tuple[str, ...]  # canonical parameter names that receive gradients
    macs_per_sample: int
    output: str  # what the forward pass returns: "logits" or "reconstruction"
    frozen: tuple[str, ...] = ()  # parameters the phase reads but does not train (lower encoders)

    @property
    def reads(self) -> tuple[str, ...]:
        """Every canonical parameter the phase computes with, frozen ones first: all that an adapter
        needs to build for it (the memory of a phase is then its own)."""
        return self.frozen + self.trainable


@dataclass(frozen=True)
class ConvLayer:
    """One 2-D convolution of a network, in the canonical NHWC / HWIO terms: what every convolution
    algorithm (``docs/convolution.md``) needs to compute it, and what a layer benchmark is built from."""

    name: str  # the layer's canonical name: its parameters are ``<name>.kernel`` and ``<name>.bias``
    in_h: int
    in_w: int
    cin: int
    cout: int
    k: int  # square kernels only: every layer of LeNet and AlexNet
    stride: int = 1
    padding: int = 0  # zeros on each side

    @property
    def out_h(self) -> int:
        return (self.in_h + 2 * self.padding - self.k) // self.stride + 1

    @property
    def out_w(self) -> int:
        return (self.in_w + 2 * self.padding - self.k) // self.stride + 1

    @property
    def macs_per_sample(self) -> int:
        return conv_macs(self.out_h, self.out_w, self.k, self.cin, self.cout)

    @property
    def params(self) -> tuple[ParamSpec, ParamSpec]:
        return _conv(self.name, self.k, self.cin, self.cout)


@dataclass(frozen=True)
class Workload:
    """A canonical network: its input, its parameters and its phases (one unnamed phase if it has none)."""

    name: str
    description: str
    input_shape: tuple[int, ...]  # per sample, canonical (NHWC for images)
    num_classes: int
    params: tuple[ParamSpec, ...]
    phases: tuple[Phase, ...]
    paper_batch_size: int
    extra: dict[str, int] = field(default_factory=dict)
    convolutions: tuple[ConvLayer, ...] = ()  # every 2-D convolution, in order: what --conv applies to
    layer_of: str = ""  # a layer benchmark (``conv:alexnet.conv2``): the network the layer comes from

    @property
    def has_convolutions(self) -> bool:
        return bool(self.convolutions)

    @property
    def is_layer(self) -> bool:
        """A single convolution timed alone, as convnet-benchmarks did (its output is the activation)."""
        return bool(self.layer_of)

    def convolution(self, name: str) -> ConvLayer:
        for layer in self.convolutions:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def has_phases(self) -> bool:
        return len(self.phases) > 1

    @property
    def phase_names(self) -> tuple[str, ...]:
        """Phase names as they appear in results: ``("",)`` for a single-phase workload."""
        return tuple(p.name for p in self.phases)

    def phase(self, name: str) -> Phase:
        for p in self.phases:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.phases if p.name) or "(none)"
        raise SuiteError(f"workload {self.name!r} has no phase {name!r}; phases: {known}")

    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def trainable_params(self, phase: str = "") -> int:
        return sum(self.param(n).size for n in self.phase(phase).trainable)

    def total_params(self) -> int:
        return sum(p.size for p in self.params)

    def macs(self, phase: str = "") -> int:
        return self.phase(phase).macs_per_sample


def _conv(name: str, k: int, cin: int, cout: int) -> tuple[ParamSpec, ParamSpec]:
    return ParamSpec(f"{name}.kernel", (k, k, cin, cout)), ParamSpec(f"{name}.bias", (cout,), "zeros")


def _dense(name: str, fin: int, fout: int) -> tuple[ParamSpec, ParamSpec]:
    return ParamSpec(f"{name}.kernel", (fin, fout)), ParamSpec(f"{name}.bias", (fout,), "zeros")


def conv_macs(out_h: int, out_w: int, k: int, cin: int, cout: int) -> int:
    """MACs of a dense 2-D convolution: one k*k*cin dot product per output element."""
    return out_h * out_w * cout * k * k * cin


LENET_CONVOLUTIONS = (ConvLayer("conv1", 28, 28, 1, 20, 5), ConvLayer("conv2", 12, 12, 20, 50, 5))
ALEXNET_CONVOLUTIONS = (
    ConvLayer("conv1", 227, 227, 3, 96, 11, stride=4),
    ConvLayer("conv2", 27, 27, 96, 256, 5, padding=2),
    ConvLayer("conv3", 13, 13, 256, 384, 3, padding=1),
    ConvLayer("conv4", 13, 13, 384, 384, 3, padding=1),
    ConvLayer("conv5", 13, 13, 384, 256, 3, padding=1),
)


def _lenet() -> Workload:
    params = (*_conv("conv1", 5, 1, 20), *_conv("conv2", 5, 20, 50),
              *_dense("fc1", 800, 500), *_dense("fc2", 500, 10))
    macs = conv_macs(24, 24, 5, 1, 20) + conv_macs(8, 8, 5, 20, 50) + 800 * 500 + 500 * 10
    return Workload(
        convolutions=LENET_CONVOLUTIONS,
        name="lenet",
        description="LeNet on MNIST-shaped 28x28x1 input, tanh convolutions, 10 classes",
        input_shape=(28, 28, 1),
        num_classes=10,
        params=params,
        phases=(Phase("", tuple(p.name for p in params), macs, "logits"),),
        paper_batch_size=64,
    )


def _alexnet() -> Workload:
    params = (
        *_conv("conv1", 11, 3, 96), *_conv("conv2", 5, 96, 256), *_conv("conv3", 3, 256, 384),
        *_conv("conv4", 3, 384, 384), *_conv("conv5", 3, 384, 256),
        *_dense("fc6", 9216, 4096), *_dense("fc7", 4096, 4096), *_dense("fc8", 4096, 1000),
    )
    macs = (
        conv_macs(55, 55, 11, 3, 96) + conv_macs(27, 27, 5, 96, 256) + conv_macs(13, 13, 3, 256, 384)
        + conv_macs(13, 13, 3, 384, 384) + conv_macs(13, 13, 3, 384, 256)
        + 9216 * 4096 + 4096 * 4096 + 4096 * 1000
    )
    return Workload(
        convolutions=ALEXNET_CONVOLUTIONS,
        name="alexnet",
        description="AlexNet (no LRN, no groups) on ImageNet-shaped 227x227x3 input, 1000 classes",
        input_shape=(227, 227, 3),
        num_classes=1000,
        params=params,
        phases=(Phase("", tuple(p.name for p in params), macs, "logits"),),
        paper_batch_size=256,
    )


def pretrain_level(phase: str) -> int:
    """k for the autoencoder phase ``pretrain<k>``, 0 for any other phase (``finetune``, "")."""
    level = phase.removeprefix(PRETRAIN_PREFIX)
    return int(level) if phase.startswith(PRETRAIN_PREFIX) and level.isdigit() else 0


def _autoencoder() -> Workload:
    sizes = AUTOENCODER_SIZES
    params: list[ParamSpec] = []
    for i in range(3):
        params.append(ParamSpec(f"enc{i + 1}.kernel", (sizes[i], sizes[i + 1])))
        params.append(ParamSpec(f"enc{i + 1}.bias", (sizes[i + 1],), "zeros"))
        params.append(ParamSpec(f"dec{i + 1}.bias", (sizes[i],), "zeros"))
    params.extend(_dense("classifier", 100, 10))

    def enc_macs(upto: int) -> int:
        return sum(sizes[i] * sizes[i + 1] for i in range(upto))

    phases = []
    for i in range(3):
        frozen = enc_macs(i)
        own = 2 * sizes[i] * sizes[i + 1]  # encoder and tied decoder
        trainable = (f"enc{i + 1}.kernel", f"enc{i + 1}.bias", f"dec{i + 1}.bias")
        below = tuple(f"enc{j + 1}.{t}" for j in range(i) for t in ("kernel", "bias"))
        phases.append(Phase(f"{PRETRAIN_PREFIX}{i + 1}", trainable, frozen + own, "reconstruction", below))
    finetune = tuple(f"enc{i + 1}.{t}" for i in range(3) for t in ("kernel", "bias")) + (
        "classifier.kernel", "classifier.bias")
    phases.append(Phase("finetune", finetune, enc_macs(3) + 100 * 10, "logits"))
    return Workload(
        name="autoencoder",
        description="stacked autoencoder 784-400-200-100 with tied decoders: 3 pretraining phases + fine-tuning",
        input_shape=(784,),
        num_classes=10,
        params=tuple(params),
        phases=tuple(phases),
        paper_batch_size=64,
    )


def _lstm() -> Workload:
    vocab, dim, hidden, maxlen = 10_000, 128, 128, 100
    params = (
        ParamSpec("embedding.table", (vocab, dim)),
        ParamSpec("lstm.input_kernel", (dim, 4 * hidden)),
        ParamSpec("lstm.recurrent_kernel", (hidden, 4 * hidden)),
        ParamSpec("lstm.bias", (4 * hidden,), "zeros"),
        *_dense("classifier", hidden, 2),
    )
    macs = maxlen * 4 * (dim * hidden + hidden * hidden) + hidden * 2
    return Workload(
        name="lstm",
        description="LSTM sentiment classifier on IMDB-shaped sequences (vocab 10k, maxlen 100, hidden 128)",
        input_shape=(maxlen,),
        num_classes=2,
        params=params,
        phases=(Phase("", tuple(p.name for p in params), macs, "logits"),),
        paper_batch_size=16,
        extra={"vocab": vocab, "embed_dim": dim, "hidden": hidden, "maxlen": maxlen},
    )


def _layer_norm(name: str, width: int) -> tuple[ParamSpec, ParamSpec]:
    return ParamSpec(f"{name}.gamma", (width,), "ones"), ParamSpec(f"{name}.beta", (width,), "zeros")


def encoder_layer_params(prefix: str, width: int, ff: int) -> tuple[ParamSpec, ...]:
    """One pre-LN encoder layer in canonical order: LN1, attention Q, K, V, O, LN2, feed-forward W1, W2."""
    return (
        *_layer_norm(f"{prefix}.ln1", width),
        *(spec for part in ("query", "key", "value", "output")
          for spec in _dense(f"{prefix}.attn.{part}", width, width)),
        *_layer_norm(f"{prefix}.ln2", width),
        *_dense(f"{prefix}.ff1", width, ff),
        *_dense(f"{prefix}.ff2", ff, width),
    )


def encoder_layer_macs(seq: int, width: int, ff: int) -> int:
    """MACs of one encoder layer on one sequence: Q/K/V projections, scores, weighted values, output
    projection and the feed-forward pair. The head split does not change the counts (heads x head_dim =
    width); layer norms, softmax and GELU are not counted, as for every workload."""
    projections = 3 * seq * width * width
    scores = seq * seq * width
    weighted_values = seq * seq * width
    output = seq * width * width
    feed_forward = 2 * seq * width * ff
    return projections + scores + weighted_values + output + feed_forward


def _transformer() -> Workload:
    vocab, width, heads, ff, layers, maxlen = 10_000, 256, 4, 1024, 4, 128
    params = (
        ParamSpec("embedding.table", (vocab, width)),
        ParamSpec("position.table", (maxlen, width)),
        *(spec for i in range(layers) for spec in encoder_layer_params(f"layer{i}", width, ff)),
        *_layer_norm("final_ln", width),
        *_dense("classifier", width, 2),
    )
    macs = layers * encoder_layer_macs(maxlen, width, ff) + width * 2
    return Workload(
        name="transformer",
        description="pre-LN Transformer encoder classifier, BERT-Mini-shaped (4 layers, width 256, 4 heads, "
                    "FF 1024), on IMDB-shaped sequences (vocab 10k, length 128)",
        input_shape=(maxlen,),
        num_classes=2,
        params=params,
        phases=(Phase("", tuple(p.name for p in params), macs, "logits"),),
        paper_batch_size=32,
        extra={"vocab": vocab, "embed_dim": width, "heads": heads, "ff": ff, "layers": layers,
               "maxlen": maxlen},
    )


# The built-in definitions. What is *registered* (the built-ins and every plugin, through the same entry-point
# group) is asked of dlbench.workloads.registry; these tables serve the built-in adapters' own variant tables.
# The built-in definitions. What is *registered* (the built-ins and every plugin, through the same entry-point
# group) is asked of dlbench.workloads.registry; these tables serve the built-in adapters' own variant tables.
WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (_lenet(), _alexnet(), _autoencoder(), _lstm(), _transformer())
}
LAYER_PREFIX = "conv:"


def layer_workload(network: Workload, layer: ConvLayer) -> Workload:
    """One convolution of ``network`` alone (``conv:alexnet.conv2``): its input shape, its kernel and bias,
    its output the convolution's (no activation), and the loss ``sum(y**2) / (2 N)``, so that the gradient
    pass computes the input gradient and the weight gradients of exactly this layer."""
    return Workload(
        name=f"{LAYER_PREFIX}{network.name}.{layer.name}",
        description=f"{network.name}'s {layer.name} alone: {layer.k}x{layer.k}, {layer.cin}->{layer.cout} "
                    f"channels, stride {layer.stride}, padding {layer.padding}, on {layer.in_h}x{layer.in_w}",
        input_shape=(layer.in_h, layer.in_w, layer.cin),
        num_classes=1,
        params=layer.params,
        phases=(Phase("", tuple(p.name for p in layer.params), layer.macs_per_sample, "activation"),),
        paper_batch_size=network.paper_batch_size,
        convolutions=(layer,),
        layer_of=network.name,
    )


# The layer benchmarks: every convolution of LeNet and AlexNet as a workload of its own. They are named
# explicitly (a suite that lists no workloads runs the networks only).
LAYER_WORKLOADS: dict[str, Workload] = {
    w.name: w for net in WORKLOADS.values() for w in (layer_workload(net, c) for c in net.convolutions)
}

# Constants of the transformer that every implementation shares (docs/workloads.md): the layer-norm epsilon
# (Keras defaults to 1e-3), the additive mask value for padded keys, the GELU form (exact, erf).
LAYER_NORM_EPSILON = 1e-5
MASK_VALUE = -1e9


def check_pass(pass_: str) -> None:
    """The one check of a pass name (suites, command-line options, ``BuiltCase.prepare``)."""
    if pass_ not in PASSES:
        raise SuiteError(f"unknown pass {pass_!r}; passes: {', '.join(PASSES)}")
