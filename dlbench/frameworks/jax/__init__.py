"""The JAX adapter: the canonical networks written in plain JAX (``jax.numpy``, ``jax.lax``, ``jax.nn``).

Why no Flax or Equinox: the install stays lean (``jax`` alone), and the parameters are a plain dict keyed
by the canonical names in the canonical layout (HWIO convolution kernels, ``[in, out]`` dense kernels,
LSTM kernels ``[in, 4H]`` with gate order i, f, g, o). Loading the canonical weights and mapping the
gradients back is then the identity, and nothing sits between the network and XLA: what is timed is what
``jax.jit`` compiles from these few functions, which is what a competent JAX user writes by hand.

Timing fairness:

* ``prepare`` compiles ahead of time (``jit(f).lower(*args).compile()``), so the runner's ``first_call_ms``
  holds tracing and XLA compilation, and every sample calls the compiled executable on arguments that
  were placed on the device once in ``build``. The gradient pass returns the gradient pytree, left on the
  device; ``sync`` waits for it (JAX dispatches asynchronously on CPU too).
* The forward pass is inference (no dropout). The gradient pass is ``jax.grad`` of the loss w.r.t. the
  phase's trainable parameters only; the frozen encoders of the autoencoder's pretraining phases are
  separate, non-differentiated arguments, so XLA computes no gradient for them. Dropout draws from a fixed
  ``jax.random`` key passed as an argument, which keeps the compiled function pure; every call does the
  same amount of random-number work as with a fresh key.
* Variants: ``jit`` writes the non-overlapping 2x2 max pools of LeNet as reshape + max, whose gradient is
  much cheaper on CPU than that of ``lax.reduce_window`` (docs/measurement.md); ``jit_reduce_window``
  uses ``lax.reduce_window`` everywhere, for comparison. AlexNet's overlapping 3x3/2 pools use
  ``lax.reduce_window`` in both. Both compute the transformer's attention with
  ``jax.nn.dot_product_attention`` (JAX's own attention function; XLA picks its implementation);
  ``plain_attention`` writes it as einsum, masked softmax, einsum (transformer only; other workloads are
  ``unavailable`` in that variant). The XLA switches (:mod:`.switches`) run jit's code in a worker of their
  own with an ``XLA_FLAGS`` value; ``jit_reduce_window`` does not apply to the layer benchmarks (no pool).
* Convolutions: every convolution algorithm runs in every variant; the ``conv_backend`` trait says which
  library XLA handed the convolutions (or the algorithm's matmuls and FFTs) to, read from the compiled HLO.
* The transformer's GELU is ``jax.nn.gelu(approximate=False)``: JAX's default is the tanh approximation,
  another function than the canonical exact GELU.

Threads: JAX has no thread API and ignores the XLA thread flags, so the runner pins the worker to N cores
with ``sched_setaffinity`` before JAX is imported; this adapter sets no thread flag and reports the affinity
it finds. fp32 means fp32: the default matmul precision is ``highest`` (no TF32 on GPU).

The modules, one part each:

- :mod:`.layers`: the array types and the building blocks (matmul, dense, convolution, pools, dropout,
  losses, layer norm, GELU, attention), pure functions of arrays.
- :mod:`.convolution`: the convolution algorithms (``native``: XLA's op; ``im2col``, ``direct``, ``fft``
  written with jnp/lax ops, differentiated by ``jax.grad``), which every convolution of LeNet and AlexNet
  goes through.
- :mod:`.networks`: LeNet, AlexNet, the autoencoder, the LSTM and the transformer, their objectives, and the
  (workload, phase) -> :class:`~.networks.Network` table with the pools of each variant.
- :mod:`.layer`: the layer benchmarks (``conv:alexnet.conv2``: one convolution, its input and weight gradients).
- :mod:`.switches`: the variants that are XLA flags (``no_ynnpack_conv`` on CPU, ``no_autotune`` and
  ``deterministic`` on GPU), what each flag does in jaxlib 0.10.2, and why there is no oneDNN/XNNPACK one.
- :mod:`.precision`: the matmul precision of each dlbench precision, the tensor-core check, and the dtypes a
  traced program really computes with.
- :mod:`.compiled`: what is read from a compiled executable (FLOPs, float loops, which library computes the
  convolutions: the ``conv_backend`` trait) and the traits of a case.
- :mod:`.case`: :class:`~.case.JaxCase`, a network with its parameters, batch and dropout key on one device.
- :mod:`.adapter`: :class:`~.adapter.JaxAdapter` (the entry point), the worker environment and the runtime
  information.

No module of this package imports a framework at module level (see ``dlbench.frameworks.base``): JAX is
imported in ``initialize``/``build`` and inside the network functions, which run only while JAX traces
them. Every import is absolute, so ``import jax`` inside this package named ``jax`` is the real JAX.
"""
