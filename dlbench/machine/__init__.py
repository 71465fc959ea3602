"""The machine a run measures on, read without importing any framework.

``capture`` takes the environment record stored beside every result (host, CPU features, packages, git
commit), ``nvml`` discovers GPUs and their processes through NVML, and ``telemetry`` samples a GPU's clocks,
power and throttling while a case is timed.
"""
