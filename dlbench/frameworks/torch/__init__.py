"""The PyTorch adapter: the canonical workloads written the way a competent PyTorch user would write them.

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
* ``plain_attention`` (transformer only) and ``lstm_cell`` (lstm only): uncompiled like ``channels_last``,
  with the attention written as matmul, masked softmax, matmul instead of
  ``F.scaled_dot_product_attention``, or the LSTM as a Python loop over ``nn.LSTMCell`` (the unfused
  strategy) instead of the fused ``nn.LSTM``.
* ``no_onednn`` (CPU), ``cudnn_benchmark`` and ``deterministic`` (GPU): the library switches of
  :mod:`.switches`, each the ``channels_last`` model with its process-wide flags set while its case runs
  (oneDNN and NNPACK off, so that native convolutions take PyTorch's own ``slow_conv2d``; cuDNN autotuning on;
  deterministic algorithms).

Every convolution of LeNet, AlexNet and the layer benchmarks (``conv:lenet.conv1`` ...) is computed by the
case's convolution algorithm (``native``, ``im2col``, ``fft``, ``direct``; :mod:`.convolution`) in every variant;
the ``conv`` and ``conv_backend`` traits record which, and what PyTorch says computed it (:mod:`.backend`).

Conventions shared by all workloads: the gradient pass returns the gradients in the order of the phase's
canonical ``trainable`` names; parameters that exist only because of PyTorch's layer design (``nn.LSTM``'s
second bias ``bias_hh``) are zeroed and frozen so that every framework does the same work.

The modules, one part each:

- :mod:`.networks`: the types every network shares (``_Inputs``, ``_Options``, ``_Net``) and LeNet, AlexNet,
  the autoencoder, the LSTM; :mod:`.transformer`: the transformer with its attentions and GELU.
- :mod:`.bindings`: the canonical weights copied into the parameters, the trainable set, the batch on the
  device (the layout converters themselves are framework-independent: :mod:`dlbench.frameworks.layouts`).
- :mod:`.precision`: autocast, the TF32 flags, which precisions a device can run, the dtype probe.
- :mod:`.timer`: ``CudaEventTimer``, the device timer; :mod:`.case`: the built case ``TorchCase``.
- :mod:`.convolution`: the convolution algorithms, and the routing of an ``nn.Conv2d`` through one;
  :mod:`.layer`: the layer benchmarks; :mod:`.backend`: the ``conv_backend`` trait; :mod:`.switches`: the
  library-switch variants and their flags.
- :mod:`.adapter`: ``TorchAdapter`` (runtime information, ``build``), the table of networks by workload and
  ``case_traits``.

No framework is imported at module level (see ``dlbench.frameworks.base``): every ``torch`` import is inside
a function. The package shares PyTorch's name only inside ``dlbench.frameworks``: every ``import torch`` is
absolute and means PyTorch itself.
"""
