"""dlbench-pytensor: the canonical dlbench workloads in PyTensor (Theano's maintained fork), as a plugin.

It is installed beside dlbench (``pip install -e plugins/dlbench-pytensor``) and found through the
``dlbench.adapters`` entry point, exactly as a third-party adapter would be; dlbench has no special case for
it. The modules, one part each:

- :mod:`.adapter`: :class:`~.adapter.PyTensorAdapter` (the entry point): threads, runtime information, build.
- :mod:`.modes`: the compile modes that are the variants (``c``, the default; ``numba``; ``jax``).
- :mod:`.layers`: dense layers, pools, dropout, losses, layer norm, GELU, attention as graph builders.
- :mod:`.convolution`: the convolution algorithms (``native``: PyTensor's ``convolve2d``; ``im2col``;
  ``direct``).
- :mod:`.networks`: LeNet, AlexNet, the autoencoder's phases, the LSTM (``scan``), the Transformer and the
  layer benchmarks, and the (workload, phase) table.
- :mod:`.case`: :class:`~.case.PyTensorCase`, the graphs over shared variables and their compiled functions.

Only :mod:`.adapter` and :mod:`.modes` may be imported without PyTensor; the others import it at module level
and are imported by the adapter inside a worker.
"""
