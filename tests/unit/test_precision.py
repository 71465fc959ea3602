"""Precision as a dimension: recipes, suite key and CLI option, the dtype check, and runs on the fake adapter."""

import csv
import json
from pathlib import Path

import pytest

from dlbench.cases.precision import device_problem, dtype_problem, get_precision
from dlbench.errors import SuiteError
from dlbench.plan.suite import Overrides, apply_overrides, expand, parse_suite
from tests.conftest import assert_one_line_error, run_cli

BASE = {"workloads": ["lenet"], "devices": {"cpu": {"batch_sizes": [2]}}}


def test_recipes_carry_the_numbers_verification_needs() -> None:
    assert get_precision("float32").significand_bits == 24
    assert get_precision("bf16").unit_roundoff == 2.0**-8
    assert get_precision("fp16").loss_scale > 1 and get_precision("bf16").loss_scale == 1
    assert get_precision("bf16").mixed and not get_precision("tf32").mixed
    with pytest.raises(SuiteError, match="unknown precision 'int8'"):
        get_precision("int8")


def test_tf32_is_gpu_only_and_the_others_are_not() -> None:
    problem = device_problem("tf32", "cpu")
    assert problem is not None and "GPU" in problem
    assert device_problem("tf32", "gpu") is None
    assert all(device_problem(p, "cpu") is None for p in ("float32", "bf16", "fp16"))


@pytest.mark.parametrize(("precision", "seen", "fragment"), [
    ("bf16", {"activation": "float32", "output": "float32"}, "computed in float32"),
    ("bf16", {"activation": "bfloat16", "output": "float16"}, "output is float16"),
    ("fp16", {}, "did not report"),
    ("float32", {"activation": "bfloat16", "output": "bfloat16"}, "computed in bfloat16"),
])
def test_dtypes_that_contradict_the_precision_are_named(precision: str, seen: dict, fragment: str) -> None:
    problem = dtype_problem(precision, seen)
    assert problem is not None and fragment in problem


def test_dtypes_that_match_pass() -> None:
    assert dtype_problem("bf16", {"activation": "bfloat16", "output": "bfloat16"}) is None
    assert dtype_problem("fp16", {"activation": "float16", "output": "float32"}) is None  # float32 logits
    assert dtype_problem("tf32", {"activation": "float32", "output": "float32"}) is None


def test_suite_key_takes_a_name_or_a_list_and_expands_every_precision() -> None:
    assert parse_suite({**BASE, "precision": "bf16"}).precisions == ("bf16",)
    suite = parse_suite({**BASE, "precision": ["float32", "bf16", "float32"]})
    assert suite.precisions == ("float32", "bf16")
    cases = expand(suite, {"fake": ("default",)})
    assert sorted({c.precision for c in cases}) == ["bf16", "float32"]
    assert len(cases) == 4  # 2 precisions x 2 passes
    assert len({c.key for c in cases}) == 4  # the precision is part of the key
    assert suite.record().precisions == ("float32", "bf16")


def test_the_command_line_replaces_the_suite_precisions() -> None:
    suite = parse_suite({**BASE, "precision": "bf16"})
    assert apply_overrides(suite, Overrides(precisions=("fp16", "float32")), 2).precisions == ("fp16", "float32")
    with pytest.raises(SuiteError, match="--precision: unknown precision 'half'"):
        apply_overrides(suite, Overrides(precisions=("half",)), 2)
    with pytest.raises(SuiteError, match="unknown precision 'float8'"):
        parse_suite({**BASE, "precision": ["float32", "float8"]})


def test_unknown_precision_on_the_command_line_is_a_one_line_error(tmp_path: Path) -> None:
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--precision", "float32,int4",
                   "--output", str(tmp_path / "r"), "--quiet")
    assert_one_line_error(proc, "unknown precision 'int4'")


def rows(directory: Path) -> dict[str, dict[str, str]]:
    with open(directory / "results.csv", newline="") as handle:
        return {row["key"]: row for row in csv.DictReader(handle)}


def test_a_run_over_precisions_records_dtypes_and_reasons(tmp_path: Path) -> None:
    out = tmp_path / "r"
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--device", "cpu", "--workload", "lenet",
                   "--pass", "forward", "--precision", "float32,bf16,fp16,tf32", "--output", str(out), "--quiet",
                   env={"DLBENCH_FAKE_FAULTS": "float32:lenet/*/bf16"})
    assert proc.returncode == 0, proc.stderr  # unavailable is not a failure
    by_precision = {r["precision"]: r for r in rows(out).values()}
    assert by_precision["float32"]["status"] == "ok"
    assert by_precision["fp16"]["status"] == "unavailable" and "float16 kernels" in by_precision["fp16"]["error"]
    assert by_precision["tf32"]["status"] == "unavailable" and "GPU" in by_precision["tf32"]["error"]
    # the fault makes bf16 silently compute in float32: caught by the dtype check, never an ok row
    assert by_precision["bf16"]["status"] == "unavailable"
    assert "computed in float32" in by_precision["bf16"]["error"]
    record = json.loads((out / "run.json").read_text())
    ok = [r for r in record["results"] if r["status"] == "ok"]
    assert ok and all(r["dtypes"] == {"activation": "float32", "output": "float32"} for r in ok)


def test_bf16_rows_are_ok_and_record_bfloat16(tmp_path: Path) -> None:
    out = tmp_path / "r"
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--device", "cpu", "--workload", "lenet",
                   "--pass", "forward", "--precision", "bf16", "--output", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "run.json").read_text())
    (result,) = record["results"]
    assert result["status"] == "ok" and result["dtypes"]["activation"] == "bfloat16"
    assert result["case"]["precision"] == "bf16"


def test_gpu_precisions_run_on_the_simulated_gpu(tmp_path: Path) -> None:
    out = tmp_path / "r"
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--device", "gpu", "--workload", "lenet",
                   "--pass", "gradient", "--precision", "tf32,fp16", "--output", str(out), "--quiet",
                   env={"DLBENCH_FAKE_GPU": "1"})
    assert proc.returncode == 0, proc.stderr
    statuses = {r["precision"]: r["status"] for r in rows(out).values()}
    assert statuses == {"tf32": "ok", "fp16": "ok"}


def test_low_precision_tolerances_are_derived_from_the_unit_roundoff() -> None:
    from dlbench.verify.tolerances import LOW_PRECISION_UNITS, tolerance_for

    full = tolerance_for("lenet")
    assert tolerance_for("lenet", "float32") == full
    bf16 = tolerance_for("lenet", "bf16")
    assert bf16.output == LOW_PRECISION_UNITS["output"] * 2.0**-8
    assert bf16.gradient == LOW_PRECISION_UNITS["gradient"] * 2.0**-8
    fp16 = tolerance_for("lenet", "fp16")
    assert full.gradient < fp16.gradient < bf16.gradient
    assert bf16.gradient < 0.09  # still below what a swapped pair of LSTM gates causes (9e-2)


def test_rounding_to_bf16_is_round_to_nearest_even_and_leaves_integers_alone() -> None:
    import numpy as np

    from dlbench.cases.precision import round_to_precision

    values = np.array([1.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 1.0 + 2.0**-9, -3.3], dtype=np.float32)
    rounded = round_to_precision(values, "bf16")
    assert list(rounded[:4]) == [1.0, 1.0, 1.0 + 2.0**-6, 1.0]  # ties go to the even neighbour
    assert abs(rounded[4] + 3.3) <= 3.3 * 2.0**-8
    tokens = np.arange(5, dtype=np.int32)
    assert round_to_precision(tokens, "bf16") is tokens
    assert round_to_precision(values, "float32") is values
    assert np.array_equal(round_to_precision(values, "fp16"), values.astype(np.float16).astype(np.float32))


def test_the_low_precision_reference_starts_from_rounded_operands_and_widened_allowance() -> None:
    import numpy as np

    from dlbench.verify.collect import Target
    from dlbench.verify.judge import compute_reference, scaled_allowance

    full = compute_reference(Target("autoencoder", "pretrain1"), 2, 0)
    bf16 = compute_reference(Target("autoencoder", "pretrain1"), 2, 0, precision="bf16")
    gap = np.abs(full.evaluation.output - bf16.evaluation.output).max() / np.abs(full.evaluation.output).max()
    assert 1e-5 < gap < 2.0**-6  # the operands moved by bf16 rounding, the function did not
    widened = scaled_allowance(full.allowance, "bf16")
    assert all(np.all(widened[k] >= full.allowance[k]) for k in full.allowance)
    assert scaled_allowance(full.allowance, "float32").keys() == full.allowance.keys()


def test_the_transformer_recipe_keeps_embeddings_and_layer_norms_in_float32() -> None:
    from dlbench.cases.precision import kept_float32

    for name in ("embedding.table", "position.table", "layer0.ln1.gamma", "layer3.ln2.beta", "final_ln.gamma"):
        assert kept_float32("transformer", name), name
    for name in ("layer0.attn.query.kernel", "layer0.attn.key.bias", "layer2.ff1.kernel", "classifier.bias"):
        assert not kept_float32("transformer", name), name
    assert not kept_float32("lstm", "embedding.table")  # the LSTM's recipe casts its embedding rows


def test_the_low_precision_reference_rounds_only_what_the_recipe_casts(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    import dlbench.verify.judge as session
    from dlbench.verify.collect import Target, build_request

    seen = {}

    def capture(workload: str, phase: str, batch: object, weights: dict, **kwargs: object) -> None:
        seen.update(weights)

    monkeypatch.setattr(session, "reference_evaluate", capture)
    session.compute_reference(Target("transformer"), 1, 0, precision="bf16")
    original = build_request(Target("transformer"), "reference", 1, 0, "cpu").weights
    for name in ("embedding.table", "layer0.ln1.gamma", "final_ln.beta"):
        assert np.array_equal(seen[name], original[name]), name
    for name in ("layer0.attn.query.kernel", "classifier.kernel"):
        assert not np.array_equal(seen[name], original[name]), name
        assert np.array_equal(seen[name], session.round_to_precision(original[name], "bf16")), name


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx avx2 fma avx512f {extra} constant_tsc
"""


@pytest.mark.parametrize(("extra", "precision", "runs"), [
    ("avx512_fp16", "fp16", True), ("amx_fp16", "fp16", True), ("avx_ne_convert", "fp16", True),
    ("avx512_bf16", "fp16", False), ("", "fp16", False), ("amx_bf16", "bf16", True),
])
def test_tensorflow_low_precision_reads_every_cpu_feature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          extra: str, precision: str, runs: bool) -> None:
    """The oneDNN feature check sees the unfiltered flags of a simulated /proc/cpuinfo; only the record filters."""
    import dlbench.machine.capture as env
    from dlbench.frameworks.tensorflow.precision import _precision_problem

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    monkeypatch.setattr(env, "CPUINFO", cpuinfo)
    problem = _precision_problem(None, precision, "cpu")  # type: ignore[arg-type]  # the CPU path needs no tf
    assert (problem is None) == runs, problem
    assert "constant_tsc" in env.cpu_features() and "constant_tsc" not in env.cpu_flags()
    if extra:
        assert extra in env.cpu_flags()  # the record keeps the features that decide low-precision kernels
