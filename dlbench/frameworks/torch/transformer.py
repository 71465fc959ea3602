"""The PyTorch transformer: pre-LN encoder layers, the two attentions (fused and plain) and the GELU.

``fused_attention``, ``plain_attention`` and ``gelu`` are module globals looked up at call time, so that
tests can replace them here with deliberately wrong ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.frameworks.layouts import Binding, dense_bindings
from dlbench.frameworks.torch.networks import _Inputs, _Net, _Options, _with_cross_entropy
from dlbench.workloads import Workload
from dlbench.workloads.definitions import LAYER_NORM_EPSILON, MASK_VALUE

if TYPE_CHECKING:
    import torch


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
    bindings = [Binding("embedding.table", "embedding.weight"), Binding("position.table", "position.weight")]
    for i in range(extra["layers"]):
        path = f"blocks.{i}"
        for ln in ("ln1", "ln2"):
            bindings += [Binding(f"layer{i}.{ln}.gamma", f"{path}.{ln}.weight"),
                         Binding(f"layer{i}.{ln}.beta", f"{path}.{ln}.bias")]
        for part in ("query", "key", "value", "output"):
            bindings += dense_bindings(f"layer{i}.attn.{part}", f"{path}.{part}")
        for dense in ("ff1", "ff2"):
            bindings += dense_bindings(f"layer{i}.{dense}", f"{path}.{dense}")
    bindings += [Binding("final_ln.gamma", "final_ln.weight"), Binding("final_ln.beta", "final_ln.bias"),
                 *dense_bindings("classifier")]
    # FlopCounterMode counts the matmuls of the plain attention; the CPU flash kernel of SDPA is not in
    # its table, so the fused variant's count would miss the attention products: withheld.
    return _Net(layers, tuple(bindings), forward, _with_cross_entropy(forward), flops_visible=not fused)

