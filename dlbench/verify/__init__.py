"""``dlbench verify``: prove that every framework computes the same canonical workload.

The pieces, each with one job:

* :mod:`~dlbench.verify.reference` - a framework-independent NumPy (float64) implementation of every
  workload phase: forward output, loss and the gradient of every trainable parameter, by manual backprop.
* :mod:`~dlbench.verify.tolerances` - the documented float32 tolerance of each workload.
* :mod:`~dlbench.verify.compare` - error metrics between two evaluations, per tensor and per family.
* :mod:`~dlbench.verify.collect` - evaluates one adapter (in this process, or isolated in a worker
  process through :mod:`~dlbench.verify.worker` and :mod:`~dlbench.verify.isolate`).
* :mod:`~dlbench.verify.session` - puts implementations and the reference side by side into a report.
* :mod:`~dlbench.verify.render` - the rich table and the JSON document of a report.
"""
