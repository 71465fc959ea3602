"""The measuring loop, driven by a fake clock so that every number is known."""

import pytest

from dlbench.measure.timing import MeasureConfig, block_size, measure, should_stop


class FakeClock:
    """perf_counter_ns stand-in: each call of the timed function advances time by a set cost."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def test_first_call_is_timed_apart_and_samples_are_per_iteration() -> None:
    clock = FakeClock()
    calls: list[str] = []
    synced: list[int] = []

    def prepare():
        clock.ns += 50_000_000  # 50 ms of "compilation"
        calls.append("prepare")

        def run() -> int:
            clock.ns += 2_000_000  # 2 ms per iteration
            calls.append("run")
            return len(calls)

        return run

    config = MeasureConfig(warmup_s=0.01, min_block_s=0.01, min_samples=5, min_time_s=0.05, max_time_s=1,
                           target_rel_ci=0.5)
    timing = measure(prepare, synced.append, config, clock=clock, cpu_clock=lambda: clock.ns / 1e9)
    assert timing.first_call_ms == pytest.approx(52.0)  # prepare + first call, never in the samples
    assert timing.iterations_per_sample == 5  # 10 ms blocks of 2 ms iterations
    assert all(s == pytest.approx(2.0) for s in timing.samples_ms)
    assert len(timing.samples_ms) >= 5
    assert calls[0] == "prepare" and calls.count("prepare") == 1
    assert len(synced) == calls.count("run")  # every iteration is synchronised


def test_block_size_targets_the_minimum_block_time() -> None:
    config = MeasureConfig(min_block_s=0.02)
    assert block_size(0.001, config) == 20
    assert block_size(0.5, config) == 1
    assert block_size(0.0, config) >= 1


def test_stopping_rule() -> None:
    config = MeasureConfig(min_samples=5, max_samples=50, min_time_s=1.0, max_time_s=10.0, target_rel_ci=0.01)
    steady = [1.0] * 5
    assert not should_stop(steady[:4], 5.0, config)  # too few samples
    assert not should_stop(steady, 0.5, config)  # too little time
    assert should_stop(steady, 1.5, config)  # tight CI
    noisy = [1.0, 2.0, 1.5, 3.0, 1.2, 2.5]
    assert not should_stop(noisy, 2.0, config)
    assert should_stop(noisy, 10.5, config)  # budget spent
    assert should_stop([1.0, 2.0, 3.0], 11.0, config)  # the budget ends even a slow case at 3 samples
    assert not should_stop([1.0, 2.0], 11.0, config)
    assert should_stop(noisy * 10, 2.0, config)  # max_samples


def test_invalid_configs_are_rejected() -> None:
    with pytest.raises(ValueError):
        MeasureConfig(min_samples=2)
    with pytest.raises(ValueError):
        MeasureConfig(min_samples=10, max_samples=5)
    with pytest.raises(ValueError):
        MeasureConfig(timeout_s=0)
