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
- ``keras_attention`` (transformer only) and ``keras_lstm`` (lstm only): ``tf.function`` with the Keras
  layer in place of the plain-op attention or LSTM loop.
- Library switches, each an environment variable set before TensorFlow is imported, so each runs in a worker
  of its own (``Adapter.variant_env``): ``eigen`` (CPU, ``TF_ENABLE_ONEDNN_OPTS=0``: Eigen's kernels instead of
  oneDNN's), ``no_autotune`` (GPU, ``TF_CUDNN_USE_AUTOTUNE=0``) and ``deterministic`` (GPU,
  ``TF_DETERMINISTIC_OPS=1`` plus ``enable_op_determinism`` and a global seed); ``tf.function`` otherwise.

Every convolution of LeNet and AlexNet, and the layer benchmarks (``conv:alexnet.conv2``, ...), runs by any of
the algorithms of ``--conv``: ``native`` (``tf.nn.conv2d``), ``im2col``, ``fft`` and ``direct``, written with TF
ops in :mod:`.convolution`, in every variant. The case traits ``conv`` and ``conv_backend`` record the
algorithm and what computes native convolutions in the worker (``onednn``, ``eigen``, ``cudnn``, ``xla``).

For the graph variants ``prepare`` traces a ``ConcreteFunction`` for the fixed batch shapes (and XLA
compiles on its first call), so tracing and compilation are timed as ``first_call_ms`` and never enter
the samples. Calling the ConcreteFunction directly also skips the tf.function argument binding and
trace-cache lookup on every call, a fixed cost that is noticeable at small batch sizes.

The modules, one part each:

- :mod:`.runtime`: the process-level set-up (threads, devices, the JAX import block) and the runtime
  information of ``initialize``; where the batch arrays are placed on the device.
- :mod:`.networks`: the ``_Network`` base (its shared layers) and LeNet, AlexNet, the autoencoder, the LSTM;
  :mod:`.transformer`: the transformer with its GELU and attention; :mod:`.layer`: the layer benchmarks.
- :mod:`.convolution`: the convolution algorithms (im2col, fft, direct, and native's padding).
- :mod:`.bindings`: the canonical weights as ``tf.Variable`` objects (and in the Keras layers of the Keras
  variants), and the gradients back in canonical shape.
- :mod:`.precision`: which precisions a device can run, the Keras dtype policies, the loss-scale unscaling
  and the dtype probe of a traced graph.
- :mod:`.graph`: what the traced graph tells (its op types, ``case_traits``), and the native convolutions'
  backend read from the graphs TF executes.
- :mod:`.case`: the built case ``TensorFlowCase``; :mod:`.adapter`: ``TensorFlowAdapter``, with the table of
  networks by workload.

Nothing here imports TensorFlow at module level (see ``dlbench.frameworks.base``); the worker imports it
in :meth:`TensorFlowAdapter.initialize`. The package shares TensorFlow's name only inside
``dlbench.frameworks``: every ``import tensorflow`` is absolute and means TensorFlow itself.
"""
