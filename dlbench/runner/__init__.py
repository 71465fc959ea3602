"""Running cases: the benchmark worker's job (worker.py, protocol.py), the executor that runs it and maps
failures to statuses (isolate.py), the run loop (schedule.py). Processes come from :mod:`dlbench.process`."""
