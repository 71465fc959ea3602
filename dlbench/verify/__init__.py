"""``dlbench verify``: prove that every framework computes the same canonical workload.

The pieces, each with one job:

* :mod:`~dlbench.verify.layers` / :mod:`~dlbench.verify.reference` - a framework-independent NumPy
  (float64) implementation of every workload phase: forward output, loss and the gradient of every
  trainable parameter by manual backprop, MACs counted as computed, and a float32 calibration run.
* :mod:`~dlbench.verify.ties` - ReLU / max-pool decisions within float32 rounding of a tie, and their
  exact effect on the gradients.
* :mod:`~dlbench.verify.biases` - the weights every side is fed: canonical, with seeded non-zero biases by
  default (``--biases random``), because all-zero biases hide a bias loaded in the wrong place.
* :mod:`~dlbench.verify.tolerances` - the documented float32 tolerance of each workload.
* :mod:`~dlbench.verify.compare` - error metrics between two evaluations, per tensor and per family.
* :mod:`~dlbench.verify.collect` - evaluates one adapter in this process (tests inject broken adapters
  here); :mod:`~dlbench.verify.job`, :mod:`~dlbench.verify.transfer` and :mod:`~dlbench.verify.launch`
  do the same in one worker process per framework, a job on the process kit (:mod:`dlbench.process`), placed
  like a benchmark worker.
* :mod:`~dlbench.verify.selection` - validates the command line; :mod:`~dlbench.verify.judge` compares and
  decides; :mod:`~dlbench.verify.render` prints the rich tables and the JSON document.
"""
