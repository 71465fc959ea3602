"""dlbench: identical deep-learning workloads on several frameworks, measured honestly."""

__version__ = "0.1.0"
