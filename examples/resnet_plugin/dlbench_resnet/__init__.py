"""A small ResNet with batch normalisation as a dlbench workload plugin (``docs/plugins.md``).

:mod:`.workload` is what the ``dlbench.workloads`` entry point names: the definition and, by
``module:attribute``, the builders of :mod:`.torch_net`, :mod:`.tf_net` and :mod:`.jax_net` and the float64
NumPy reference of :mod:`.reference`. Only :mod:`.workload` (NumPy and dlbench) is imported to list or plan
the workload; each framework module is imported in its own framework's worker.
"""
