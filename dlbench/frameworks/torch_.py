"""PyTorch adapter: the canonical workloads written the way a competent PyTorch user would write them.

Variants (recorded in every result row):

* ``channels_last`` (default): NCHW tensors stored in ``torch.channels_last`` memory format, weights too.
  On CPU oneDNN's convolutions and ``max_pool2d`` are several times faster in that layout (docs/measurement.md
  has the numbers), it is the layout the PyTorch performance guide
  recommends for convolutional nets, and a user who cares about speed would pick it. The flatten before
  fc1/fc6 is then a free ``permute`` to N,H,W,C, which is exactly the canonical flatten order. For the
  autoencoder and the LSTM (no convolutions) it is the same computation as ``eager``.
* ``eager``: plain contiguous NCHW, what most tutorials write. The flatten is a free view in C,H,W order,
  so the fc1/fc6 rows are permuted once at build time instead.
* ``compile``: the ``channels_last`` model wrapped in ``torch.compile`` (inductor, static shapes). Nothing
  is compiled in ``prepare``: compilation happens in the first call, which the harness times separately
  as ``first_call_ms``.

Conventions shared by all workloads: the gradient pass returns the gradients in the order of the phase's
canonical ``trainable`` names; parameters that exist only because of PyTorch's layer design (``nn.LSTM``'s
second bias ``bias_hh``) are zeroed and frozen so that every framework does the same work.

No framework is imported at module level (see ``base.py``): every ``torch`` import is inside a function.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dlbench.cases.precision import get_precision
from dlbench.frameworks.base import (
    Adapter,
    BuildRequest,
    BuiltCase,
    CaseUnavailable,
    DeviceTimer,
    Evaluation,
    RuntimeInfo,
)
from dlbench.frameworks.cuda_arch import kernel_binaries
from dlbench.workloads import AUTOENCODER_SIZES, DROPOUT_RATE, Batch, Workload, check_pass, pretrain_level
from dlbench.workloads.definitions import LAYER_NORM_EPSILON, MASK_VALUE

if TYPE_CHECKING:
    import torch
    from torch import nn

# Variants that only change the transformer's attention (other workloads: unavailable).
ATTENTION_VARIANTS: tuple[str, ...] = ("plain_attention",)
# The LSTM as a loop over nn.LSTMCell (the unfused strategy); only the lstm workload has it.
LSTM_CELL_VARIANT = "lstm_cell"
# The one place where dlbench's device names meet PyTorch's.
TORCH_DEVICES: dict[str, str] = {"cpu": "cpu", "gpu": "cuda"}

Convert = Callable[[np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------------------------------
# Canonical <-> PyTorch weight layouts (pure NumPy, so that they are easy to reason about and test)
# ----------------------------------------------------------------------------------------------------
def _identity(a: np.ndarray) -> np.ndarray:
    return a


def _transpose(a: np.ndarray) -> np.ndarray:
    """Dense kernel ``[in, out]`` <-> ``nn.Linear`` weight ``[out, in]`` (its own inverse); also the LSTM
    kernels ``[in, 4H]`` <-> ``weight_ih_l0`` ``[4H, in]`` (both use gate order i, f, g, o)."""
    return a.T


def _hwio_to_oihw(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (3, 2, 0, 1))


def _oihw_to_hwio(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (2, 3, 1, 0))


def _chw_flatten_converters(h: int, w: int, c: int) -> tuple[Convert, Convert]:
    """Converters for the dense layer after a *channels-first* flatten.

    The canonical kernel's rows follow the H, W, C flatten order; ``Tensor.flatten`` of an NCHW map gives
    C, H, W. Permuting the rows once at build time keeps the runtime flatten a free view. ``to_torch``
    returns the weight as an ``[out, C, H, W]`` view (the loader copies it into the parameter viewed that
    way), which avoids a slow NumPy copy of fc6's 38 million floats.
    """

    def to_torch(kernel: np.ndarray) -> np.ndarray:
        return kernel.reshape(h, w, c, kernel.shape[1]).transpose(3, 2, 0, 1)

    def to_canonical(weight: np.ndarray) -> np.ndarray:
        out = weight.shape[0]
        return weight.T.reshape(c, h, w, out).transpose(1, 2, 0, 3).reshape(h * w * c, out)

    return to_torch, to_canonical


@dataclass(frozen=True)
class _Binding:
    """One canonical parameter and where it lives in the PyTorch model, with the layout conversions.

    ``to_torch`` may return a (strided) view of any shape that the parameter can be viewed as; the
    loader lets PyTorch do the strided copy, which is much faster than ``np.ascontiguousarray``.
    """

    canonical: str  # e.g. "conv1.kernel"
    path: str  # parameter path inside the model, for ``nn.Module.get_parameter``
    to_torch: Convert = _identity
    to_canonical: Convert = _identity


def _conv_bindings(name: str) -> tuple[_Binding, ...]:
    return (
        _Binding(f"{name}.kernel", f"{name}.weight", _hwio_to_oihw, _oihw_to_hwio),
        _Binding(f"{name}.bias", f"{name}.bias"),
    )


def _dense_bindings(name: str, path: str | None = None) -> tuple[_Binding, ...]:
    path = path or name
    return (
        _Binding(f"{name}.kernel", f"{path}.weight", _transpose, _transpose),
        _Binding(f"{name}.bias", f"{path}.bias"),
    )


def _flat_dense_bindings(name: str, hwc: tuple[int, int, int], flatten_hwc: bool) -> tuple[_Binding, ...]:
    """The dense layer right after a flatten: rows permuted unless the model flattens in H, W, C order."""
    if flatten_hwc:
        return _dense_bindings(name)
    to_torch, to_canonical = _chw_flatten_converters(*hwc)
    return _Binding(f"{name}.kernel", f"{name}.weight", to_torch, to_canonical), _Binding(
        f"{name}.bias", f"{name}.bias"
    )


# ----------------------------------------------------------------------------------------------------
# The networks
# ----------------------------------------------------------------------------------------------------
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
    bindings: tuple[_Binding, ...]
    forward: ForwardFn
    output_and_loss: LossFn
    flops_visible: bool = True  # False where FlopCounterMode cannot see the arithmetic (fused kernels)


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
        *_conv_bindings("conv1"),
        *_conv_bindings("conv2"),
        *_flat_dense_bindings("fc1", (4, 4, 50), opts.flatten_hwc),
        *_dense_bindings("fc2"),
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
        *(b for name in convs for b in _conv_bindings(name)),
        *_flat_dense_bindings("fc6", (6, 6, 256), opts.flatten_hwc),
        *_dense_bindings("fc7"),
        *_dense_bindings("fc8"),
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
    bindings = [b for i in range(depth) for b in _dense_bindings(f"enc{i + 1}")]

    if stage is None:
        classifier = nn.Linear(sizes[-1], workload.num_classes)
        modules["classifier"] = classifier
        bindings.extend(_dense_bindings("classifier"))

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
    bindings.append(_Binding(f"dec{stage}.bias", f"dec{stage}.bias"))

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
        _Binding("embedding.table", "embedding.weight"),
        _Binding("lstm.input_kernel", f"lstm.weight_ih{suffix}", _transpose, _transpose),
        _Binding("lstm.recurrent_kernel", f"lstm.weight_hh{suffix}", _transpose, _transpose),
        _Binding("lstm.bias", f"lstm.bias_ih{suffix}"),
        *_dense_bindings("classifier"),
    )
    # The fused LSTM is one aten op that FlopCounterMode does not count: it would report only the
    # classifier (2,048 FLOPs of ~13 million), so the count is withheld rather than wrong. The cell loop's
    # matmuls are ordinary addmm calls, which it counts.
    return _Net(layers, bindings, forward, _with_cross_entropy(forward), flops_visible=cell_loop)


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` on ``[N, heads, T, head_dim]`` with the boolean key-padding mask
    (True = attend); its default scale is 1/sqrt(head_dim). PyTorch picks its fused kernel (on CPU a
    flash-attention kernel that never materialises the T x T probabilities)."""
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep)


def plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Matmul, masked softmax over the keys, matmul: attention as written in the textbooks. The softmax is
    float32 in every precision (``dtype=torch.float32``; CPU autocast would otherwise round it to bf16);
    autocast casts the probabilities back to the compute dtype for the second product."""
    import torch

    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    scores = scores.masked_fill(~keep, MASK_VALUE)
    return torch.softmax(scores, dim=-1, dtype=torch.float32) @ v


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact (erf) GELU: ``approximate="none"`` is PyTorch's default."""
    import torch.nn.functional as F

    return F.gelu(x)


def _attend(fused: bool, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Looks the attention function up at call time (tests replace it with deliberately wrong ones)."""
    return fused_attention(q, k, v, keep) if fused else plain_attention(q, k, v, keep)


def _transformer(workload: Workload, opts: _Options) -> _Net:
    """Pre-LN encoder layers as ``nn.Linear``/``nn.LayerNorm`` modules (separate Q, K, V projections, as in
    Hugging Face's BERT), the learned positions as a parameter added to the token embedding, and the
    attention of the variant. ``nn.LayerNorm``'s default epsilon is the canonical 1e-5.

    Under autocast (bf16/fp16) the embeddings and the residual stream stay float32 (float32 + a
    low-precision projection promotes to float32), so every layer norm gets a float32 input and computes
    its statistics and output in float32; the projections and the GELU run in the compute dtype, the
    attention's softmax in float32 (the fused kernel accumulates it in float32 internally)."""
    from torch import nn

    extra = workload.extra
    vocab, width, heads, ff = extra["vocab"], extra["embed_dim"], extra["heads"], extra["ff"]
    embedding = nn.Embedding(vocab, width)
    position = nn.Embedding(extra["maxlen"], width)
    block_list = [
        nn.ModuleDict({
            "ln1": nn.LayerNorm(width, eps=LAYER_NORM_EPSILON),
            "query": nn.Linear(width, width), "key": nn.Linear(width, width), "value": nn.Linear(width, width),
            "output": nn.Linear(width, width),
            "ln2": nn.LayerNorm(width, eps=LAYER_NORM_EPSILON),
            "ff1": nn.Linear(width, ff), "ff2": nn.Linear(ff, width),
        })
        for _ in range(extra["layers"])
    ]
    blocks = nn.ModuleList(block_list)
    final_ln = nn.LayerNorm(width, eps=LAYER_NORM_EPSILON)
    classifier = nn.Linear(width, workload.num_classes)
    fused = opts.fused_attention

    def forward(inputs: _Inputs, training: bool) -> torch.Tensor:
        tokens, mask, keep = inputs.x, inputs.mask, inputs.keep
        assert mask is not None and keep is not None
        n, steps = tokens.shape
        h = embedding(tokens) + position.weight[:steps]

        def split(x: torch.Tensor) -> torch.Tensor:  # [N, T, D] -> [N, heads, T, D / heads]
            return x.view(n, steps, heads, -1).transpose(1, 2)

        for block in block_list:
            a = block["ln1"](h)
            context = _attend(fused, split(block["query"](a)), split(block["key"](a)), split(block["value"](a)),
                              keep)
            h = h + block["output"](context.transpose(1, 2).reshape(n, steps, width))
            h = h + block["ff2"](gelu(block["ff1"](block["ln2"](h))))
        pooled = (final_ln(h) * mask).sum(1) / mask.sum(1)
        return classifier(pooled)

    layers = nn.ModuleDict({"embedding": embedding, "position": position, "blocks": blocks,
                            "final_ln": final_ln, "classifier": classifier})
    bindings = [_Binding("embedding.table", "embedding.weight"), _Binding("position.table", "position.weight")]
    for i in range(extra["layers"]):
        path = f"blocks.{i}"
        for ln in ("ln1", "ln2"):
            bindings += [_Binding(f"layer{i}.{ln}.gamma", f"{path}.{ln}.weight"),
                         _Binding(f"layer{i}.{ln}.beta", f"{path}.{ln}.bias")]
        for part in ("query", "key", "value", "output"):
            bindings += _dense_bindings(f"layer{i}.attn.{part}", f"{path}.{part}")
        for dense in ("ff1", "ff2"):
            bindings += _dense_bindings(f"layer{i}.{dense}", f"{path}.{dense}")
    bindings += [_Binding("final_ln.gamma", "final_ln.weight"), _Binding("final_ln.beta", "final_ln.bias"),
                 *_dense_bindings("classifier")]
    # FlopCounterMode counts the matmuls of the plain attention; the CPU flash kernel of SDPA is not in
    # its table, so the fused variant's count would miss the attention products: withheld.
    return _Net(layers, tuple(bindings), forward, _with_cross_entropy(forward), flops_visible=not fused)


BUILDERS: dict[str, Callable[[Workload, _Options], _Net]] = {
    "lenet": _lenet,
    "alexnet": _alexnet,
    "autoencoder": _autoencoder,
    "lstm": _lstm,
    "transformer": _transformer,
}


# ----------------------------------------------------------------------------------------------------
# Precision: autocast (mixed precision as the PyTorch AMP guide recommends), TF32 flags, the dtype probe
# ----------------------------------------------------------------------------------------------------
AUTOCAST_DTYPES: dict[str, str] = {"bf16": "bfloat16", "fp16": "float16"}
PROBED_LAYERS: tuple[str, ...] = ("Conv2d", "Linear", "LSTM", "LSTMCell", "MultiheadAttention")


def _with_autocast(fn: Callable[[_Inputs, bool], Any], device_type: str, dtype: torch.dtype
                   ) -> Callable[[_Inputs, bool], Any]:
    """``fn`` under ``torch.autocast``: the float32 parameters stay the master weights, autocast casts
    the inputs of matmuls, convolutions and the LSTM to ``dtype`` (cached per call) and runs losses and
    softmax in float32. Inside the function, so that ``torch.compile`` traces the autocast region too."""
    import torch

    def wrapped(inputs: _Inputs, training: bool) -> Any:
        with torch.autocast(device_type, dtype=dtype):
            return fn(inputs, training)

    return wrapped


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _probe_dtypes(net: _Net, forward: ForwardFn, inputs: _Inputs) -> dict[str, str]:
    """Dtypes of one real forward call: the output, and the output of the first matmul/convolution layer
    that runs (seen through a forward hook), so that a precision autocast did not apply shows up."""
    import torch

    seen: dict[str, str] = {}

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        first = output[0] if isinstance(output, tuple) else output
        seen.setdefault("activation", _dtype_name(first.dtype))

    handles = [m.register_forward_hook(hook) for m in net.layers.modules()
               if type(m).__name__ in PROBED_LAYERS]
    try:
        with torch.inference_mode():
            out = forward(inputs, False)
    finally:
        for handle in handles:
            handle.remove()
    seen["output"] = _dtype_name(out.dtype)
    return seen


def _precision_problem(torch: Any, precision: str, device: str) -> str | None:
    """Why this device cannot run ``precision`` (None if it can), asked of PyTorch itself.

    CPU: low precision needs oneDNN's kernels. Without them autocast falls back to ATen's reference kernels
    (AlexNet's fp16 gradient took 8x its float32 time here, a cost no user would accept) and nn.LSTM has
    no fp16 kernel at all, so such a CPU is reported as lacking the precision rather than measured."""
    if device != "gpu":
        if precision == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return "PyTorch's oneDNN reports no bfloat16 kernels on this CPU (they need AVX512 or newer)"
        if precision == "fp16" and not torch.ops.mkldnn._is_mkldnn_fp16_supported():
            return ("PyTorch's oneDNN reports no float16 kernels on this CPU (they need AVX512-FP16 or "
                    "AMX-FP16); only slow reference kernels remain, and none for nn.LSTM")
        return None
    major = torch.cuda.get_device_capability()[0]
    if precision == "tf32" and major < 8:
        return f"TF32 needs an NVIDIA GPU of compute capability 8.0 or later, this one is {major}.x"
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bfloat16 support (torch.cuda.is_bf16_supported() is False)"
    return None


def _set_tf32(torch: Any, on: bool) -> None:
    """Process-wide flags, set for each case at build time (the cases of a worker run one at a time)."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


# ----------------------------------------------------------------------------------------------------
# Building: weights, trainable set, device placement, inputs
# ----------------------------------------------------------------------------------------------------
def _load_weights(net: _Net, weights: Mapping[str, np.ndarray]) -> None:
    """Copy the canonical weights in (their names and shapes are checked by ``Adapter.check_request``);
    parameters with no canonical counterpart are zeroed and frozen."""
    import torch

    bound = set()
    with torch.no_grad():
        for b in net.bindings:
            value = b.to_torch(np.asarray(weights[b.canonical], dtype=np.float32))
            param = net.layers.get_parameter(b.path)
            if value.size != param.numel():
                raise RuntimeError(
                    f"{b.canonical}: converted shape {value.shape} does not fit {b.path} {tuple(param.shape)}"
                )
            param.view(value.shape).copy_(torch.from_numpy(value))
            bound.add(b.path)
        for path, param in net.layers.named_parameters():
            if path not in bound:
                param.zero_()
                param.requires_grad_(False)


def _mark_trainable(net: _Net, trainable: tuple[str, ...]) -> tuple[_Binding, ...]:
    """Set ``requires_grad`` from the phase's canonical trainable names; return their bindings in order."""
    by_name = {b.canonical: b for b in net.bindings}
    missing = [n for n in trainable if n not in by_name]
    if missing:
        raise RuntimeError(f"the PyTorch model has no parameter for {', '.join(missing)}")
    wanted = set(trainable)
    for b in net.bindings:
        net.layers.get_parameter(b.path).requires_grad_(b.canonical in wanted)
    return tuple(by_name[n] for n in trainable)


def _to_inputs(batch: Batch, device: torch.device, memory_format: torch.memory_format) -> _Inputs:
    """Canonical batch -> device tensors. Images NHWC -> NCHW with explicit strides: for 1-channel input
    ``contiguous()`` is a no-op on a permuted view, whose strides would silently select channels_last."""
    import torch

    labels = torch.tensor(np.asarray(batch.y), dtype=torch.int64, device=device)
    x = np.asarray(batch.x)
    if batch.mask is not None:
        tokens = torch.tensor(x, dtype=torch.int64, device=device)
        mask = torch.tensor(batch.mask, dtype=torch.float32, device=device)
        keep = (mask > 0)[:, None, None, :]
        return _Inputs(tokens, labels, mask.unsqueeze(-1), keep)
    tensor = torch.tensor(x, dtype=torch.float32, device=device)
    if tensor.dim() == 4:
        tensor = tensor.permute(0, 3, 1, 2).clone(memory_format=memory_format)
    return _Inputs(tensor, labels)


# ----------------------------------------------------------------------------------------------------
# The built case
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _State:
    """Everything a built case holds on to; dropped as a whole by ``close``."""

    net: _Net
    inputs: _Inputs
    trainable: tuple[_Binding, ...]
    params: tuple[torch.nn.Parameter, ...]  # in the order of ``trainable``
    forward: ForwardFn  # the variant's functions (compiled or not)
    output_and_loss: LossFn


class CudaEventTimer(DeviceTimer):
    """Two ``torch.cuda.Event(enable_timing=True)`` recorded on the current stream around the work;
    ``elapsed_time`` is the device time between them in milliseconds, after the end event completed."""

    def __init__(self, torch: Any) -> None:
        self._begin = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._begin.record()

    def stop(self) -> None:
        self._end.record()

    def elapsed_ms(self) -> float:
        self._end.synchronize()
        return float(self._begin.elapsed_time(self._end))


class TorchCase(BuiltCase):
    """One built PyTorch model with its batch on the device."""

    def __init__(self, state: _State, device: torch.device, compiled: bool, trainable_params: int,
                 loss_scale: float = 1.0, dtypes: dict[str, str] | None = None,
                 traits: dict[str, str] | None = None) -> None:
        import torch

        self._torch = torch
        self._traits = dict(traits or {})
        self._loss_scale = loss_scale
        self._dtypes = dict(dtypes or {})
        self._state: _State | None = state
        self._device = device
        self._cuda = device.type == "cuda"
        self._compiled = compiled
        self._trainable_params = trainable_params

    def _live(self) -> _State:
        if self._state is None:
            raise RuntimeError("this PyTorch case was closed")
        return self._state

    @property
    def trainable_params(self) -> int:
        return self._trainable_params

    def prepare(self, pass_: str) -> Callable[[], Any]:
        check_pass(pass_)
        state = self._live()
        return self._pass(pass_, state.forward, state.output_and_loss)

    def _pass(self, pass_: str, forward: ForwardFn, output_and_loss: LossFn) -> Callable[[], Any]:
        """The timed callable: everything it needs is bound here, so a call does no lookups."""
        state = self._live()
        inputs, params = state.inputs, state.params
        inference_mode, grad = self._torch.inference_mode, self._torch.autograd.grad
        if pass_ == "forward":

            def forward_pass() -> torch.Tensor:
                with inference_mode():
                    return forward(inputs, False)

            return forward_pass
        if pass_ == "gradient" and self._loss_scale != 1.0:
            scale, unscale, foreach_mul = self._loss_scale, 1.0 / self._loss_scale, self._torch._foreach_mul_

            def scaled_gradient_pass() -> tuple[torch.Tensor, ...]:
                # fp16: static loss scale, then unscale the float32 gradients in one fused foreach op
                # (what torch.amp.GradScaler does, minus its inf/nan check and scale update).
                _, loss = output_and_loss(inputs, True)
                grads = grad(loss * scale, params)
                foreach_mul(grads, unscale)
                return grads

            return scaled_gradient_pass
        if pass_ == "gradient":

            def gradient_pass() -> tuple[torch.Tensor, ...]:
                _, loss = output_and_loss(inputs, True)
                return grad(loss, params)

            return gradient_pass
        raise AssertionError(pass_)  # unreachable: prepare checked the name

    def sync(self, handle: Any) -> None:
        if self._cuda:
            self._torch.cuda.synchronize(self._device)

    def evaluate(self) -> Evaluation:
        """Dropout is off here whatever the request said (``training=False``), so that every framework
        computes the same function; the variant's own (possibly compiled) functions are used."""
        torch = self._torch
        state = self._live()
        with torch.enable_grad():
            out, loss = state.output_and_loss(state.inputs, False)
            grads = torch.autograd.grad(loss * self._loss_scale, state.params)
            if self._loss_scale != 1.0:
                grads = tuple(g / self._loss_scale for g in grads)
        gradients = {
            b.canonical: np.ascontiguousarray(b.to_canonical(g.detach().cpu().numpy()))
            for b, g in zip(state.trainable, grads, strict=True)
        }
        output = out.detach().float().cpu().numpy()  # NumPy has no bfloat16
        return Evaluation(output=output, loss=float(loss.item()), gradients=gradients)

    def dtypes(self) -> dict[str, str]:
        return dict(self._dtypes)

    def traits(self) -> dict[str, str]:
        return dict(self._traits)

    def device_timer(self) -> DeviceTimer | None:
        return CudaEventTimer(self._torch) if self._cuda else None

    def reset_peak_memory(self) -> None:
        if self._cuda:
            self._torch.cuda.reset_peak_memory_stats(self._device)

    def peak_memory_bytes(self, pass_: str) -> int | None:
        if self._cuda:
            return int(self._torch.cuda.max_memory_allocated(self._device))
        return None

    def framework_flops(self, pass_: str) -> float | None:
        """One call counted by ``FlopCounterMode`` (2 per multiply-accumulate of matmuls and convolutions,
        backward included for the gradient pass). The uncompiled functions are counted: the dispatcher
        does not see inside compiled kernels, and the arithmetic is the same."""
        state = self._live()
        if not state.net.flops_visible:
            return None
        try:
            from torch.utils.flop_counter import FlopCounterMode

            run = self._pass(pass_, state.net.forward, state.net.output_and_loss)
            with FlopCounterMode(display=False) as counter:
                self.sync(run())
            return float(counter.get_total_flops())
        except Exception:  # optional information: never let it fail a case
            return None

    def close(self) -> None:
        self._state = None
        if self._compiled:
            # Dynamo caches compiled code per code object; the next case must not hit stale entries or
            # the recompile limit (after which it would silently run eagerly).
            self._torch._dynamo.reset()
        gc.collect()
        if self._cuda:
            self._torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------------
# The adapter
# ----------------------------------------------------------------------------------------------------
def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def _backends(torch: Any, cuda: bool) -> dict[str, str]:
    """Versions of the libraries doing the arithmetic (some only visible in ``torch.__config__.show()``)."""
    config = torch.__config__.show()
    info: dict[str, str] = {}
    if torch.backends.mkldnn.is_available():
        info["onednn"] = _search(r"(?:oneDNN|MKL-DNN) v([\d.]+)", config) or "available"
    if torch.backends.mkl.is_available():
        info["mkl"] = _search(r"Math Kernel Library Version ([\d.]+)", config) or "available"
    if torch.backends.openmp.is_available():
        info["openmp"] = _search(r"OpenMP (\d+)", config) or "available"
    try:
        info["cpu_capability"] = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        pass
    if torch.version.cuda:
        info["cuda"] = str(torch.version.cuda)
    if cuda:
        major, minor = torch.cuda.get_device_capability(0)
        info["kernel_binaries"] = kernel_binaries((major, minor), torch.cuda.get_arch_list())
        cudnn = torch.backends.cudnn.version()
        if cudnn is not None:
            info["cudnn"] = str(cudnn)
        info["gpu"] = str(torch.cuda.get_device_name(0))
    return info


class TorchAdapter(Adapter):
    """PyTorch. See the module docstring for the variants and why ``channels_last`` is the default."""

    name = "torch"
    display_name = "PyTorch"
    module = "torch"
    distributions = ("torch",)
    variants = ("channels_last", "eager", "compile", "plain_attention", LSTM_CELL_VARIANT)
    default_variant = "channels_last"
    variant_workloads = {**{v: ("transformer",) for v in ATTENTION_VARIANTS}, LSTM_CELL_VARIANT: ("lstm",)}
    precisions = ("float32", "tf32", "bf16", "fp16")
    variant_help = {
        "channels_last": "eager PyTorch, conv nets in channels_last memory format (fast oneDNN path on CPU); "
                         "transformer attention by F.scaled_dot_product_attention",
        "eager": "eager PyTorch, plain contiguous NCHW tensors",
        "compile": "channels_last model under torch.compile (inductor); compilation is in the first call",
        "plain_attention": "transformer only: eager, attention as matmul, masked softmax, matmul "
                           "instead of F.scaled_dot_product_attention",
        LSTM_CELL_VARIANT: "lstm only: eager, a Python loop over nn.LSTMCell (unfused: kernels per step) "
                           "instead of the fused nn.LSTM (one cuDNN kernel on a GPU)",
    }

    def supports_gpu_build(self) -> bool:
        """A ``+cpu`` wheel (local version label, e.g. ``2.13.0+cpu``) has no CUDA support."""
        version = self.version()
        if version is None:
            return False
        local = version.partition("+")[2]
        return local.split(".")[0] != "cpu"

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        """Inductor caches compiled kernels on disk across processes; with caches the ``compile`` variant's
        first call would depend on what ran on this machine before. Disabled for reproducible numbers."""
        return {"TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"}

    def device_memory_in_use(self, device: str) -> int | None:
        """``torch.cuda.memory_allocated()``: bytes in live tensors (the cache the allocator keeps is not
        counted: it is reusable, not leaked)."""
        import torch

        if device != "gpu" or not torch.cuda.is_available():
            return None
        return int(torch.cuda.memory_allocated())

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        import torch

        cuda = torch.cuda.is_available()
        if device == "gpu" and not cuda:
            raise RuntimeError(f"PyTorch {torch.__version__} sees no CUDA GPU (a +cpu build, or no driver)")
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already set, or parallel work already ran; the value in effect is recorded below
        # Full float32 everywhere: TF32 would silently change GPU matmuls/convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        # Fixed shapes per case: let cuDNN pick its fastest algorithm; the search lands in the first call.
        torch.backends.cudnn.benchmark = device == "gpu"
        settings = {
            "tf32": "off",
            "matmul_precision": torch.get_float32_matmul_precision(),
            "interop_threads": str(torch.get_num_interop_threads()),
            "cudnn_benchmark": "on" if torch.backends.cudnn.benchmark else "off",
            "onednn_bf16": "yes" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "no",
            "onednn_fp16": "yes" if torch.ops.mkldnn._is_mkldnn_fp16_supported() else "no",
        }
        return RuntimeInfo(
            framework=self.name,
            version=str(torch.__version__),
            threads=torch.get_num_threads(),
            devices=("cpu", "gpu") if cuda else ("cpu",),
            backends=_backends(torch, cuda),
            settings=settings,
        )

    def _build(self, request: BuildRequest) -> TorchCase:
        import torch

        variant, workload = request.variant, request.workload
        builder = BUILDERS.get(workload.name)
        if builder is None:
            raise CaseUnavailable(f"torch adapter has no implementation of workload {workload.name!r}")
        if request.device == "gpu" and not torch.cuda.is_available():
            raise CaseUnavailable("PyTorch sees no CUDA GPU")
        problem = _precision_problem(torch, request.precision, request.device)
        if problem is not None:
            raise CaseUnavailable(problem)
        if request.device == "gpu":
            _set_tf32(torch, request.precision == "tf32")
        compiled = variant == "compile"
        if compiled and request.device == "gpu" and not _has_triton():
            raise CaseUnavailable("torch.compile on GPU needs triton, which is not installed")
        phase = workload.phase(request.phase)

        opts = _Options(phase=request.phase, dropout=request.dropout, flatten_hwc=variant != "eager",
                        fused_attention=variant not in ATTENTION_VARIANTS, lstm_cell=variant == LSTM_CELL_VARIANT)
        device = torch.device(TORCH_DEVICES[request.device])
        # Built on the meta device and allocated uninitialised on the target: PyTorch's own random
        # initialisation (slow for AlexNet's 62M weights) would be overwritten by the canonical weights anyway.
        with torch.device("meta"):
            net = builder(workload, opts)
        net.layers.to_empty(device=device)
        _load_weights(net, request.weights)
        trainable = _mark_trainable(net, phase.trainable)
        memory_format = torch.contiguous_format if variant == "eager" else torch.channels_last
        # Only 4-D conv weights change layout. Documented usage, missing from the type stubs.
        net.layers.to(memory_format=memory_format)  # type: ignore[call-overload]
        params = tuple(net.layers.get_parameter(b.path) for b in trainable)
        count = sum(p.numel() for p in net.layers.parameters() if p.requires_grad)

        forward, output_and_loss = net.forward, net.output_and_loss
        autocast = AUTOCAST_DTYPES.get(request.precision)
        if autocast is not None:
            dtype = getattr(torch, autocast)
            forward = _with_autocast(forward, device.type, dtype)
            output_and_loss = _with_autocast(output_and_loss, device.type, dtype)
        inputs = _to_inputs(request.batch, device, memory_format)
        try:
            dtypes = _probe_dtypes(net, forward, inputs)  # before compiling: the compiled code has no hooks
        except RuntimeError as exc:
            if autocast is None:
                raise
            # e.g. nn.LSTM under float16 autocast on a CPU whose oneDNN has no fp16 RNN primitive
            raise CaseUnavailable(f"PyTorch has no {autocast} kernel for this network on {request.device}: "
                                  f"{str(exc).splitlines()[0]}") from exc
        if request.precision == "tf32":
            dtypes["matmul"] = "tf32"
        if compiled:
            torch._dynamo.reset()  # a fresh cache per case, whatever ran before
            forward = torch.compile(forward, dynamic=False)
            output_and_loss = torch.compile(output_and_loss, dynamic=False)
        state = _State(net, inputs, trainable, params, forward, output_and_loss)
        loss_scale = get_precision(request.precision).loss_scale
        return TorchCase(state, device, compiled, count, loss_scale, dtypes, _traits(torch, net, workload.name))


def _traits(torch: Any, net: _Net, workload: str) -> dict[str, str]:
    """The layout in effect, read from the convolution weights themselves (a 1-channel input tensor is
    contiguous in both formats and says nothing), and the LSTM's strategy (see BuiltCase.traits)."""
    traits: dict[str, str] = {}
    kernels = [p for p in net.layers.parameters() if p.dim() == 4]
    if kernels:
        nhwc = all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
        traits["layout"] = "channels_last" if nhwc and not all(p.is_contiguous() for p in kernels) else "NCHW"
    if workload == "lstm":
        cell = any(type(m).__name__ == "LSTMCell" for m in net.layers.modules())
        traits["recurrence"] = "unfused" if cell else "fused"
    return traits


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:
        return False
    return bool(has_triton())
