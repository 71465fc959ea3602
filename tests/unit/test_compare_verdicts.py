"""Verdicts of ``dlbench compare``: case matching, failures, memory, environment warnings, exit codes."""

from __future__ import annotations

import msgspec
import pytest

from dlbench.errors import DlbenchError
from dlbench.record.results import FAILED as STATUS_FAILED
from dlbench.record.results import TIMEOUT, UNAVAILABLE, CaseResult, Memory
from dlbench.regress.env_diff import environment_differences
from dlbench.regress.threshold import parse_alpha, parse_threshold
from dlbench.regress.verdict import (
    FAILED,
    IMPROVED,
    MISSING,
    NEW,
    REGRESSED,
    UNCHANGED,
    CaseComparison,
    Comparison,
    Policy,
    classify_ratio,
    compare_runs,
    memory_changes,
)
from tests.regress_fixtures import MiB, make_case, make_environment, make_result, make_run

QUIET = [10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.05, 10.1, 9.95, 10.0]
SLOW = [x * 1.3 for x in QUIET]
FAST = [x * 0.7 for x in QUIET]

LENET = make_case("lenet")
LSTM = make_case("lstm")
ALEX = make_case("alexnet", batch_size=16)


def by_key(comparison: Comparison) -> dict[str, CaseComparison]:
    return {c.key: c for c in comparison.cases}


# ----- thresholds -----
@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.05", 0.05), (" 12.5 % ", 0.125), ("0", 0.0),
                                             ("150%", 1.5)])
def test_threshold_accepts_percent_and_fraction(text: str, value: float) -> None:
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["5", "abc", "-5%", "nan", "inf%", "", "%"])
def test_bad_threshold_is_a_one_line_error(text: str) -> None:
    with pytest.raises(DlbenchError) as info:
        parse_threshold(text)
    assert "\n" not in str(info.value) and "threshold" in str(info.value)


def test_alpha_must_be_a_sensible_level() -> None:
    assert parse_alpha("1%") == pytest.approx(0.01)
    for text in ("0", "0.7", "x"):
        with pytest.raises(DlbenchError):
            parse_alpha(text)


def test_classify_ratio_needs_both_significance_and_size() -> None:
    assert classify_ratio(1.2, True, 0.05) == REGRESSED
    assert classify_ratio(1.2, False, 0.05) == UNCHANGED
    assert classify_ratio(1.04, True, 0.05) == UNCHANGED
    assert classify_ratio(0.9, True, 0.05) == IMPROVED
    assert classify_ratio(0.96, True, 0.05) == UNCHANGED  # 1/1.05 = 0.952: within the threshold


# ----- matching and statuses -----
def test_cases_are_matched_by_key_and_every_verdict_is_reached() -> None:
    unavailable = make_case("autoencoder", phase="pretrain1")
    flaky = make_case("lenet", pass_="gradient")
    baseline = make_run("base", [
        make_result(LENET, QUIET), make_result(LSTM, QUIET), make_result(ALEX, QUIET),
        make_result(flaky, QUIET), make_result(unavailable, status=UNAVAILABLE),
        make_result(make_case("lenet", batch_size=2), QUIET),
    ])
    current = make_run("cur", [
        make_result(LENET, SLOW), make_result(LSTM, FAST), make_result(ALEX, QUIET),
        make_result(flaky, status=TIMEOUT, error="killed after 300 s"), make_result(unavailable, QUIET),
        make_result(make_case("lenet", batch_size=128), QUIET),
    ])
    comparison = compare_runs(baseline, current, Policy())
    cases = by_key(comparison)
    assert cases[LENET.key].verdict == REGRESSED
    assert cases[LSTM.key].verdict == IMPROVED
    assert cases[ALEX.key].verdict == UNCHANGED
    assert cases[flaky.key].verdict == FAILED and cases[flaky.key].newly_failed
    assert cases[flaky.key].notes == ("killed after 300 s",)
    assert cases[unavailable.key].verdict == NEW  # measurable now, was not before
    assert cases[make_case("lenet", batch_size=128).key].verdict == NEW
    assert cases[make_case("lenet", batch_size=2).key].verdict == MISSING
    assert comparison.counts() == {REGRESSED: 1, FAILED: 1, IMPROVED: 1, MISSING: 1, NEW: 2, UNCHANGED: 1}
    assert comparison.exit_code() == 1


def test_identical_runs_exit_zero_and_failures_only_count_when_strict() -> None:
    flaky = make_case("lenet", pass_="gradient")
    baseline = make_run("base", [make_result(LENET, QUIET), make_result(flaky, QUIET),
                                 make_result(LSTM, QUIET)])
    current = make_run("cur", [make_result(LENET, QUIET), make_result(flaky, status=STATUS_FAILED)])
    comparison = compare_runs(baseline, current, Policy())
    assert comparison.exit_code() == 0
    assert comparison.exit_code(strict=True) == 1
    only_missing = compare_runs(make_run("b", [make_result(LENET), make_result(LSTM)]),
                                make_run("c", [make_result(LENET)]), Policy())
    assert only_missing.exit_code() == 0 and only_missing.exit_code(strict=True) == 1


def test_strict_counts_a_new_case_that_fails_but_not_one_unavailable_here() -> None:
    baseline = make_run("b", [make_result(LENET)])
    crashing = make_run("c", [make_result(LENET), make_result(LSTM, status=TIMEOUT)])
    assert compare_runs(baseline, crashing, Policy()).exit_code(strict=True) == 1
    no_gpu = make_run("c", [make_result(LENET), make_result(LSTM, status=UNAVAILABLE)])
    assert compare_runs(baseline, no_gpu, Policy()).exit_code(strict=True) == 0


def test_a_case_failing_in_both_runs_is_not_a_new_failure() -> None:
    baseline = make_run("b", [make_result(LENET, status=UNAVAILABLE)])
    current = make_run("c", [make_result(LENET, status=UNAVAILABLE)])
    comparison = compare_runs(baseline, current, Policy())
    assert comparison.cases[0].verdict == FAILED and not comparison.cases[0].newly_failed
    # not a new failure; only "nothing compared" (the sole case has no timing) makes it non-zero by default
    assert comparison.exit_code(strict=True, allow_empty=True) == 0
    assert comparison.exit_code(strict=True) == 1


def test_threshold_decides_between_regressed_and_unchanged() -> None:
    baseline = make_run("b", [make_result(LENET, QUIET)])
    current = make_run("c", [make_result(LENET, SLOW)])  # +30%, clearly significant
    assert compare_runs(baseline, current, Policy(threshold=0.25)).exit_code() == 1
    assert compare_runs(baseline, current, Policy(threshold=0.35)).exit_code() == 0


def test_ok_result_without_samples_is_judged_on_memory_only() -> None:
    baseline = make_run("b", [make_result(LENET, ())])
    current = make_run("c", [make_result(LENET, (), rise_mib=300)])
    case = compare_runs(baseline, current, Policy()).cases[0]
    assert case.timing is None and case.verdict == UNCHANGED and case.memory_verdict == REGRESSED
    assert "no timing samples to compare" in case.notes


def test_thread_count_difference_is_noted_on_the_case() -> None:
    baseline = make_run("b", [make_result(LENET, QUIET, threads_effective=1)])
    current = make_run("c", [make_result(LENET, QUIET, threads_effective=4)])
    case = compare_runs(baseline, current, Policy()).cases[0]
    assert any("threads in effect differ" in note for note in case.notes)


def test_a_lower_cpu_share_is_noted_as_possible_contention() -> None:
    baseline = make_run("b", [make_result(LENET, QUIET, cpu_per_wall=0.98)])
    current = make_run("c", [make_result(LENET, SLOW, cpu_per_wall=0.49)])
    case = compare_runs(baseline, current, Policy()).cases[0]
    assert any("0.98 (baseline) vs 0.49 (current)" in note for note in case.notes)
    same = make_run("c", [make_result(LENET, SLOW, cpu_per_wall=0.9)])
    assert not any("CPU time" in note for note in compare_runs(baseline, same, Policy()).cases[0].notes)


# ----- memory -----
def memory(rise_mib: float, framework_mib: float | None = None) -> Memory:
    framework = None if framework_mib is None else int(framework_mib * MiB)
    return Memory(peak_rss=int((200 + rise_mib) * MiB), baseline_rss=200 * MiB, framework_peak=framework)


@pytest.mark.parametrize(("base", "cur", "verdict"), [
    (100, 120, REGRESSED),  # +20 MiB, +20%
    (100, 105, UNCHANGED),  # +5%: below the relative threshold
    (1, 6, UNCHANGED),  # +500% but only 5 MiB: allocator noise
    (120, 100, IMPROVED),
    (0, 50, REGRESSED),  # from nothing to 50 MiB
])
def test_memory_threshold_and_floor(base: float, cur: float, verdict: str) -> None:
    changes = {c.metric: c for c in memory_changes(memory(base), memory(cur), Policy())}
    assert set(changes) == {"peak_rss", "rss_rise"} and changes["rss_rise"].verdict == verdict


def test_every_memory_reading_present_in_both_runs_is_compared() -> None:
    changes = memory_changes(memory(100, 500), memory(100, 700), Policy())
    found = [(c.metric, c.verdict, c.judged) for c in changes]
    assert found == [("peak_rss", UNCHANGED, False), ("rss_rise", UNCHANGED, False),
                     ("framework_peak", REGRESSED, True)]  # the allocator's own peak decides where there is one
    assert memory_changes(memory(100, 500), Memory(), Policy()) == ()


def test_time_and_memory_get_a_verdict_each_and_fail_on_chooses_what_fails() -> None:
    baseline = make_run("b", [make_result(LENET, QUIET, rise_mib=100)])
    current = make_run("c", [make_result(LENET, QUIET, rise_mib=200)])
    comparison = compare_runs(baseline, current, Policy())
    (case,) = comparison.cases
    assert case.timing_verdict == case.verdict == UNCHANGED and case.memory_verdict == REGRESSED
    assert case.judged_memory is not None and case.judged_memory.metric == "peak_rss"  # no framework peak here
    assert comparison.counts()[REGRESSED] == 0 and comparison.memory_counts()[REGRESSED] == 1
    assert comparison.exit_code() == 0  # time is what fails by default
    assert compare_runs(baseline, current, Policy(fail_on=("time", "memory"))).exit_code() == 1
    assert compare_runs(baseline, current, Policy(fail_on=("memory",), memory_threshold=1.5)).exit_code() == 0
    faster = make_run("c", [make_result(LENET, FAST, rise_mib=200)])
    (both,) = compare_runs(baseline, faster, Policy()).cases
    assert both.verdict == IMPROVED and both.memory_verdict == REGRESSED  # twice as fast is not "regressed"


def test_memory_measured_in_rounds_must_differ_beyond_its_variation_between_rounds() -> None:
    def rounds(*peaks_mib: float) -> CaseResult:
        results = [make_result(LENET, QUIET, rise_mib=peak - 200) for peak in peaks_mib]
        merged = results[0]
        for other in results[1:]:
            merged = merged.add_round(other)
        return merged

    base = make_run("b", [rounds(300, 340, 260)])
    noisy = make_run("c", [rounds(340, 300, 380)])  # median +13%: beyond 10%, not beyond the rounds' spread
    steady = make_run("c", [rounds(341, 340, 339)])
    assert compare_runs(base, noisy, Policy()).cases[0].memory_verdict == UNCHANGED
    (case,) = compare_runs(make_run("b", [rounds(300, 301, 299)]), steady, Policy()).cases
    assert case.memory_verdict == REGRESSED and case.judged_memory is not None
    assert case.judged_memory.test is not None and case.judged_memory.test.rounds == (3, 3)


# ----- environment -----
def test_same_environment_gives_no_warning() -> None:
    run = make_run("a", [make_result(LENET)])
    assert environment_differences(run, run, {"torch"}) == []


def test_environment_differences_are_named() -> None:
    base = make_run("a", [], make_environment())
    env = make_environment(cpu_model="Intel Xeon", python="3.12.1")
    env["frameworks"]["torch"]["version"] = "2.14.0"
    cur = make_run("b", [], env)
    warnings = environment_differences(base, cur, {"torch", "jax"})
    assert any("CPU model differs" in w and "Intel Xeon" in w for w in warnings)
    assert any("Python version differs" in w for w in warnings)
    assert any("torch version differs: 2.13.0 (baseline) vs 2.14.0 (current)" in w for w in warnings)
    assert len(warnings) == 3


def test_calibration_gap_is_a_warning() -> None:
    base_env, cur_env = make_environment(), make_environment()
    base_env["calibration"] = {"1": {"gflops": 50.0}}
    cur_env["calibration"] = {"1": {"gflops": 30.0}}
    warnings = environment_differences(make_run("a", [], base_env), make_run("b", [], cur_env), set())
    assert len(warnings) == 1 and "machine speed differs" in warnings[0]


def test_partial_environment_records_do_not_crash() -> None:
    partial = make_run("a", [], {"host": {}, "calibration": {"1": {"gflops": 5.0}}, "frameworks": {}})
    assert environment_differences(partial, make_run("b", [], {}), {"torch"}) == []
    assert environment_differences(make_run("b", [], {}), partial, {"torch"}) == []


def test_odd_environment_records_are_refused_naming_the_field() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.host"):
        make_run("a", [], {"host": "not a dict", "gpus": "none", "frameworks": {}})


def test_environment_warnings_reach_the_comparison() -> None:
    base = make_run("a", [make_result(LENET)], make_environment())
    cur = make_run("b", [make_result(LENET)], make_environment(hostname="other-runner"))
    comparison = compare_runs(base, cur, Policy())
    assert comparison.warnings == ("host name differs: ci-1 (baseline) vs other-runner (current)",)
