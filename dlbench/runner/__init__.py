"""Running cases: isolated worker processes (worker.py), their supervision (isolate.py), the run loop
(schedule.py)."""
