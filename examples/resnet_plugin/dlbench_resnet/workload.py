"""The ResNet's definition: a CIFAR-shaped 32x32x3 input, a 3x3 stem, two basic residual blocks (the second
halves the resolution and doubles the width, with a 1x1 projection shortcut), global average pooling and a
10-way classifier. Every convolution is bias-free and followed by batch normalisation.

Batch norm, as every implementation computes it: in the **gradient pass** (training) each channel is
normalised by the batch's own mean and biased variance over N, H, W; in the **forward pass** (inference) by
its running statistics ``<bn>.mean`` and ``<bn>.var``, which are canonical parameters the phase reads but does
not train (``Phase.frozen``), seeded like every weight ("small" around 0, "positive" around 1). The update of
the running statistics (an exponential average, O(C) work) is left out of the timed gradient, so that every
pass is a pure function of the canonical weights and verify can compare it; epsilon is 1e-5 everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbench.workloads import ParamSpec, Phase, Workload, WorkloadPlugin

IMAGE, CHANNELS, CLASSES = 32, 3, 10
EPSILON = 1e-5


@dataclass(frozen=True)
class Conv:
    """One bias-free convolution (HWIO kernel ``<name>.kernel``) and the batch norm that follows it (``bn``)."""

    name: str
    bn: str
    k: int
    cin: int
    cout: int
    stride: int
    in_size: int

    @property
    def pad(self) -> int:
        return self.k // 2  # 3x3: 1 on each side; 1x1: none

    @property
    def out_size(self) -> int:
        return (self.in_size + 2 * self.pad - self.k) // self.stride + 1

    @property
    def macs(self) -> int:
        return self.out_size * self.out_size * self.cout * self.k * self.k * self.cin


@dataclass(frozen=True)
class Block:
    """A basic residual block: conv1 (stride), bn1, ReLU, conv2, bn2, plus the shortcut (identity, or a 1x1
    projection with its batch norm when the shape changes), ReLU."""

    name: str
    conv1: Conv
    conv2: Conv
    projection: Conv | None


def _block(name: str, cin: int, cout: int, stride: int, size: int) -> Block:
    out = (size + 2 - 3) // stride + 1
    projection = Conv(f"{name}.proj", f"{name}.proj_bn", 1, cin, cout, stride, size) if stride != 1 or cin != cout \
        else None
    return Block(name, Conv(f"{name}.conv1", f"{name}.bn1", 3, cin, cout, stride, size),
                 Conv(f"{name}.conv2", f"{name}.bn2", 3, cout, cout, 1, out), projection)


STEM = Conv("stem.conv", "stem.bn", 3, CHANNELS, 16, 1, IMAGE)
BLOCKS: tuple[Block, ...] = (_block("block1", 16, 16, 1, IMAGE), _block("block2", 16, 32, 2, IMAGE))
WIDTH = BLOCKS[-1].conv2.cout  # what the global average pool hands to the classifier


def convolutions() -> tuple[Conv, ...]:
    """Every convolution, in the order the network computes them."""
    return (STEM, *(c for b in BLOCKS for c in (b.conv1, b.conv2, b.projection) if c is not None))


def _bn_params(name: str, width: int) -> tuple[tuple[ParamSpec, ...], tuple[ParamSpec, ...]]:
    """(trained gamma and beta, frozen running mean and variance)."""
    return ((ParamSpec(f"{name}.gamma", (width,), "ones"), ParamSpec(f"{name}.beta", (width,), "zeros")),
            (ParamSpec(f"{name}.mean", (width,), "small"), ParamSpec(f"{name}.var", (width,), "positive")))


def definition() -> Workload:
    trained: list[ParamSpec] = []
    running: list[ParamSpec] = []
    for conv in convolutions():
        trained.append(ParamSpec(f"{conv.name}.kernel", (conv.k, conv.k, conv.cin, conv.cout)))
        gamma_beta, mean_var = _bn_params(conv.bn, conv.cout)
        trained.extend(gamma_beta)
        running.extend(mean_var)
    trained += [ParamSpec("fc.kernel", (WIDTH, CLASSES)), ParamSpec("fc.bias", (CLASSES,), "zeros")]
    macs = sum(c.macs for c in convolutions()) + WIDTH * CLASSES
    phase = Phase("", tuple(p.name for p in trained), macs, "logits", frozen=tuple(p.name for p in running))
    return Workload(
        name="resnet",
        description="small ResNet (3x3 stem, 2 basic blocks 16->32, batch norm, projection shortcut) on "
                    "CIFAR-shaped 32x32x3 input, 10 classes",
        input_shape=(IMAGE, IMAGE, CHANNELS),
        num_classes=CLASSES,
        params=(*trained, *running),
        phases=(phase,),
        paper_batch_size=128,
    )


# The plugin's own count, which dlbench checks against the parameter table when it loads the plugin: 19,994
# trained (kernels 432 + 2 x 2,304 + 4,608 + 9,216 + 512, batch-norm gamma and beta 288, classifier 330) and 288
# running statistics.
DECLARED_PARAMS = 20_282

_HERE = "dlbench_resnet"
RESNET = WorkloadPlugin(
    workload=definition(),
    builders={"torch": f"{_HERE}.torch_net:build", "tensorflow": f"{_HERE}.tf_net:ResNetTF",
              "jax": f"{_HERE}.jax_net:build"},
    reference=f"{_HERE}.reference:reference",
    declared_params=DECLARED_PARAMS,
)
