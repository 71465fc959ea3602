"""The PyTorch networks (LeNet, AlexNet, the autoencoder, the LSTM) and the types every network shares.

A network is a builder ``(workload, options) -> _Net``: its layers as an ``nn.ModuleDict``, its canonical
weight bindings (:mod:`dlbench.frameworks.layouts`) and two pure functions closing over the layers. The
transformer, with its attention and GELU, is in :mod:`dlbench.frameworks.torch.transformer`; the table of
builders by workload is in :mod:`dlbench.frameworks.torch.adapter`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dlbench.frameworks.layouts import Binding, conv_bindings, dense_bindings, flat_dense_bindings, transpose
from dlbench.workloads import AUTOENCODER_SIZES, DROPOUT_RATE, Workload, pretrain_level

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class _Inputs:
    """One batch on the device, in PyTorch's layout."""

    x: torch.Tensor  # NCHW images (in the variant's memory format), [N, 784] features or [N, T] int64 tokens
    labels: torch.Tensor  # int64 [N]
    mask: torch.Tensor | None = None  # float32 [N, T, 1], sequence workloads: 1 on the valid steps
    keep: torch.Tensor | None = None  # bool [N, 1, 1, T], sequence workloads: True on the keys to attend to


@dataclass(frozen=True)
class _Options:
    phase: str
    dropout: bool  # dropout active in the gradient pass (False for verification)
    flatten_hwc: bool  # flatten feature maps by permuting to N,H,W,C (free in channels_last)
    fused_attention: bool = True  # the transformer's attention: F.scaled_dot_product_attention, else plain
    lstm_cell: bool = False  # the LSTM as a Python loop over nn.LSTMCell instead of the fused nn.LSTM


# (inputs, training) -> output, and (inputs, training) -> (output, loss)
ForwardFn = Callable[[_Inputs, bool], "torch.Tensor"]
LossFn = Callable[[_Inputs, bool], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass(frozen=True)
class _Net:
    """A built network: its parameters (an ``nn.ModuleDict``, so that ``.to(device, memory_format)`` and
    ``get_parameter`` work) and two pure functions closing over the layers. Plain functions rather than an
    ``nn.Module`` subclass, because a subclass would need ``torch`` at import time of this module."""

    layers: nn.Module
    bindings: tuple[Binding, ...]
    forward: ForwardFn
    output_and_loss: LossFn
    flops_visible: bool = True  # False where FlopCounterMode cannot see the arithmetic (fused kernels)
    # A layer benchmark (conv:<network>.<layer>): the gradient pass differentiates w.r.t. the input too, and
    # the output is an NCHW-indexed image that evaluate() hands back in the canonical NHWC.
    layer: bool = False


def _with_cross_entropy(forward: ForwardFn) -> LossFn:
    import torch.nn.functional as F

    def output_and_loss(inputs: _Inputs, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        out = forward(inputs, training)
        return out, F.cross_entropy(out.float(), inputs.labels)  # float32 softmax and loss in every precision

    return output_and_loss


def _flattener(flatten_hwc: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """H, W, C flatten (a view when the map is channels_last) or C, H, W flatten (a view when NCHW)."""
    if flatten_hwc:
        return lambda h: h.permute(0, 2, 3, 1).flatten(1)
    return lambda h: h.flatten(1)


def _lenet(workload: Workload, opts: _Options) -> _Net:
    import torch
    import torch.nn.functional as F
    from torch import nn

    conv1, conv2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
    fc1, fc2 = nn.Linear(800, 500), nn.Linear(500, workload.num_classes)
    flatten = _flattener(opts.flatten_hwc)

    def forward(inputs: _Inputs, training: bool) -> torch.Tensor:
        h = F.max_pool2d(torch.tanh(conv1(inputs.x)), 2)
        h = F.max_pool2d(torch.tanh(conv2(h)), 2)
        return fc2(F.relu(fc1(flatten(h))))

    layers = nn.ModuleDict({"conv1": conv1, "conv2": conv2, "fc1": fc1, "fc2": fc2})
    bindings = (
        *conv_bindings("conv1"),
        *conv_bindings("conv2"),
        *flat_dense_bindings("fc1", (4, 4, 50), opts.flatten_hwc),
        *dense_bindings("fc2"),
    )
    return _Net(layers, bindings, forward, _with_cross_entropy(forward))


def _alexnet(workload: Workload, opts: _Options) -> _Net:
    import torch.nn.functional as F
    from torch import nn

    convs = {
        "conv1": nn.Conv2d(3, 96, 11, stride=4),
        "conv2": nn.Conv2d(96, 256, 5, padding=2),
        "conv3": nn.Conv2d(256, 384, 3, padding=1),
        "conv4": nn.Conv2d(384, 384, 3, padding=1),
        "conv5": nn.Conv2d(384, 256, 3, padding=1),
    }
    fc6, fc7, fc8 = nn.Linear(9216, 4096), nn.Linear(4096, 4096), nn.Linear(4096, workload.num_classes)
    c1, c2, c3, c4, c5 = convs.values()
    flatten = _flattener(opts.flatten_hwc)
    dropout = opts.dropout

    def forward(inputs: _Inputs, training: bool) -> torch.Tensor:
        # In-place ReLU as in torchvision's AlexNet: it saves one activation buffer per layer.
        h = F.max_pool2d(F.relu(c1(inputs.x), inplace=True), 3, 2)
        h = F.max_pool2d(F.relu(c2(h), inplace=True), 3, 2)
        h = F.relu(c3(h), inplace=True)
        h = F.relu(c4(h), inplace=True)
        h = F.max_pool2d(F.relu(c5(h), inplace=True), 3, 2)
        drop = training and dropout
        h = F.dropout(F.relu(fc6(flatten(h)), inplace=True), DROPOUT_RATE, training=drop)
        h = F.dropout(F.relu(fc7(h), inplace=True), DROPOUT_RATE, training=drop)
        return fc8(h)

    layers = nn.ModuleDict({**convs, "fc6": fc6, "fc7": fc7, "fc8": fc8})
    bindings = (
        *(b for name in convs for b in conv_bindings(name)),
        *flat_dense_bindings("fc6", (6, 6, 256), opts.flatten_hwc),
        *dense_bindings("fc7"),
        *dense_bindings("fc8"),
    )
    return _Net(layers, bindings, forward, _with_cross_entropy(forward))


def _autoencoder(workload: Workload, opts: _Options) -> _Net:
    """Only the layers the phase uses are built, so that the memory of a phase is its own.

    Pretraining stage k runs encoders 1..k-1 frozen (no graph is recorded for them), then encoder k and
    its tied decoder: ``F.linear(code, enc.weight.t(), dec_bias)`` reuses the very same Parameter, so its
    gradient sums the encoder and decoder contributions.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    sizes = AUTOENCODER_SIZES
    stage = pretrain_level(opts.phase) or None  # None: fine-tuning
    depth = len(sizes) - 1 if stage is None else stage
    encoders = [nn.Linear(sizes[i], sizes[i + 1]) for i in range(depth)]
    modules: dict[str, nn.Module] = {f"enc{i + 1}": enc for i, enc in enumerate(encoders)}
    bindings = [b for i in range(depth) for b in dense_bindings(f"enc{i + 1}")]

    if stage is None:
        classifier = nn.Linear(sizes[-1], workload.num_classes)
        modules["classifier"] = classifier
        bindings.extend(dense_bindings("classifier"))

        def forward(inputs: _Inputs, training: bool) -> torch.Tensor:
            h = inputs.x
            for enc in encoders:
                h = torch.sigmoid(enc(h))
            return classifier(h)

        layers = nn.ModuleDict(modules)
        return _Net(layers, tuple(bindings), forward, _with_cross_entropy(forward))

    frozen, own = encoders[:-1], encoders[-1]
    # Closures hold modules, never Parameters: moving between devices may replace Parameter objects.
    decoder = nn.ParameterDict({"bias": nn.Parameter(torch.zeros(sizes[stage - 1]))})
    modules[f"dec{stage}"] = decoder
    bindings.append(Binding(f"dec{stage}.bias", f"dec{stage}.bias"))

    def features(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for enc in frozen:
                x = torch.sigmoid(enc(x))
        return x

    def reconstruct(h: torch.Tensor) -> torch.Tensor:
        code = torch.sigmoid(own(h))
        return torch.sigmoid(F.linear(code, own.weight.t(), decoder["bias"]))

    def forward_ae(inputs: _Inputs, training: bool) -> torch.Tensor:
        return reconstruct(features(inputs.x))

    def output_and_loss(inputs: _Inputs, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        target = features(inputs.x)
        out = reconstruct(target)
        return out, (out.float() - target.float()).square().sum() / (2 * target.shape[0])

    return _Net(nn.ModuleDict(modules), tuple(bindings), forward_ae, output_and_loss)


def _lstm(workload: Workload, opts: _Options) -> _Net:
    """``nn.LSTM`` (gate order i, f, g, o like the canonical layout) with the canonical bias in ``bias_ih``;
    ``bias_hh`` has no binding, so the loader zeroes and freezes it.

    The ``lstm_cell`` variant loops an ``nn.LSTMCell`` over the steps in Python instead: the same
    parameters (named ``weight_ih``/``weight_hh``/``bias_ih``/``bias_hh`` without the ``_l0``), one small
    kernel launch group per step. ``nn.LSTM`` is a single fused kernel (cuDNN on a GPU, one oneDNN
    primitive on a CPU); the cell loop is the unfused strategy that TensorFlow's ``tf.scan`` and JAX's
    ``lax.scan`` follow, so the pair compares frameworks at equal strategy."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    vocab, dim, hidden = workload.extra["vocab"], workload.extra["embed_dim"], workload.extra["hidden"]
    embedding = nn.Embedding(vocab, dim)
    cell_loop = opts.lstm_cell
    lstm: nn.Module = nn.LSTMCell(dim, hidden) if cell_loop else nn.LSTM(dim, hidden, batch_first=True)
    classifier = nn.Linear(hidden, workload.num_classes)
    dropout = opts.dropout

    def run_cells(embedded: torch.Tensor) -> torch.Tensor:
        h = c = embedded.new_zeros(embedded.shape[0], hidden)
        states = []
        for step in embedded.unbind(1):
            h, c = lstm(step, (h, c))
            states.append(h)
        return torch.stack(states, 1)

    def forward(inputs: _Inputs, training: bool) -> torch.Tensor:
        embedded = embedding(inputs.x)
        # all T steps; the mask only selects what is averaged
        states = run_cells(embedded) if cell_loop else lstm(embedded)[0]
        mask = inputs.mask
        assert mask is not None
        pooled = (states * mask).sum(1) / mask.sum(1)
        pooled = F.dropout(pooled, DROPOUT_RATE, training=training and dropout)
        return classifier(pooled)

    layers = nn.ModuleDict({"embedding": embedding, "lstm": lstm, "classifier": classifier})
    suffix = "" if cell_loop else "_l0"
    bindings = (
        Binding("embedding.table", "embedding.weight"),
        Binding("lstm.input_kernel", f"lstm.weight_ih{suffix}", transpose, transpose),
        Binding("lstm.recurrent_kernel", f"lstm.weight_hh{suffix}", transpose, transpose),
        Binding("lstm.bias", f"lstm.bias_ih{suffix}"),
        *dense_bindings("classifier"),
    )
    # The fused LSTM is one aten op that FlopCounterMode does not count: it would report only the
    # classifier (2,048 FLOPs of ~13 million), so the count is withheld rather than wrong. The cell loop's
    # matmuls are ordinary addmm calls, which it counts.
    return _Net(layers, bindings, forward, _with_cross_entropy(forward), flops_visible=cell_loop)
