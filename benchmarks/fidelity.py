"""Fidelity: dlbench's median time against the same network written plainly (``benchmarks/plain.py``), for
every workload and framework, one thread on CPU, forward and gradient (issue 28).

For each (framework, workload) the script runs, one after the other on the same core:

    plain, dlbench, plain[, dlbench, plain ...]        (``--repeats`` dlbench runs, one plain more)

- **dlbench** is the real thing: ``dlbench run --suite default --framework F --workload W --threads 1
  --no-control`` into a scratch directory (its worker process, its warm-up case, its timing protocol, the
  default suite's batch sizes and ``[measure]`` settings: LeNet b64, AlexNet b16, autoencoder b64 (its four
  phases), LSTM b16, Transformer b8), and the medians are read from its ``results.csv``.
- **plain** is a child process placed as dlbench places a one-thread worker (the first core of this process's
  affinity, the thread variables set to 1 and the adapter's worker environment before the framework is
  imported) that builds the plain network of every phase and times each pass with dlbench's own timing loop
  (``dlbench.measure.timing.measure``: first call, warm-up, blocks, adaptive stopping) under the same
  ``[measure]`` settings, so that the two sides differ only in the code that builds and runs the network.

The ratio of a round is dlbench's median over the mean of the two plain medians around it (drift in the
machine's speed then cancels to first order); the table shows the median ratio over the rounds, forward /
gradient, and with ``--repeats`` 2 or more the range of the rounds' ratios. A ratio in [0.95, 1.05] is within
the issue's goal; ``docs/measurement.md`` ("Fidelity") says why the ones outside are not the same computation.

    .venv/bin/python benchmarks/fidelity.py                     # everything, one round (~10 min)
    .venv/bin/python benchmarks/fidelity.py --repeats 3         # three rounds: a steadier table
    .venv/bin/python benchmarks/fidelity.py --workload lstm --framework torch,jax --repeats 5
    .venv/bin/python benchmarks/fidelity.py --variant tensorflow=keras_lstm --workload lstm

``--variant F=V`` times dlbench's variant V of framework F instead of its default (``dlbench list`` names
them). The machine's load (``os.getloadavg``) is printed before and after: on a busy machine every time
stretches and the ratios get noisier (the interleaving keeps them fairer than the absolute times).
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "suites" / "default.toml"
WORKLOADS = ("lenet", "alexnet", "autoencoder", "lstm", "transformer")
FRAMEWORKS = ("torch", "tensorflow", "jax")
PHASES = {"autoencoder": ("pretrain1", "pretrain2", "pretrain3", "finetune")}
PASSES = ("forward", "gradient")
Medians = dict[str, float]  # "phase/pass" -> median ms


def suite_settings() -> tuple[dict[str, int], dict[str, float]]:
    """The default suite's CPU batch size of each workload and its ``[measure]`` table."""
    suite = tomllib.loads(SUITE.read_text())
    batch_sizes = {w: int(sizes[0]) for w, sizes in suite["devices"]["cpu"]["batch_sizes"].items()}
    return batch_sizes, dict(suite["measure"])


def dlbench_command() -> list[str]:
    exe = Path(sys.executable).with_name("dlbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dlbench"]


# ----------------------------------------------------------------------------------------------------------
# The plain side (in the child)
# ----------------------------------------------------------------------------------------------------------
def plain_child(framework: str, workload: str, batch_size: int, settings: dict[str, float]) -> Medians:
    """Every phase and pass of the plain network, timed by dlbench's timing loop."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import plain

    from dlbench.measure.timing import MeasureConfig, measure

    config = MeasureConfig(**{k: v for k, v in settings.items() if k != "timeout_s"})
    medians: Medians = {}
    for phase in PHASES.get(workload, ("",)):
        passes = plain.build(framework, workload, phase, batch_size)
        for pass_ in PASSES:
            gc.collect()
            timing = measure(lambda call=passes[pass_]: call, lambda _: None, config)
            medians[f"{phase}/{pass_}"] = statistics.median(timing.samples_ms)
        del passes
    return medians


def run_plain(framework: str, workload: str, batch_size: int) -> Medians:
    """The plain child, placed as dlbench places a one-thread CPU worker."""
    from dlbench.frameworks.registry import get_adapter
    from dlbench.process.placement import place

    placement = place(1)
    env = {**os.environ, **placement.environment(), **get_adapter(framework).worker_env("cpu", 1)}
    command = [sys.executable, __file__, "--plain-child", framework, "--workload", workload,
               "--batch-size", str(batch_size), "--cores", ",".join(map(str, placement.cores))]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"plain {framework} {workload} failed:\n{done.stderr[-3000:]}")
    result: Medians = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ----------------------------------------------------------------------------------------------------------
# The dlbench side
# ----------------------------------------------------------------------------------------------------------
def run_dlbench(framework: str, workload: str, variant: str, scratch: Path) -> Medians:
    out = Path(tempfile.mkdtemp(dir=scratch, prefix=f"{framework}-{workload}-"))
    command = [*dlbench_command(), "run", "--suite", str(SUITE), "--framework", framework, "--workload",
               workload, "--threads", "1", "--no-control", "--quiet", "--output", str(out / "run")]
    if variant:
        command += ["--variant", variant]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dlbench run {framework} {workload} failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    medians: Medians = {}
    with open(out / "run" / "results.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["status"] != "ok":
                raise RuntimeError(f"dlbench {row['key']}: {row['status']} {row['error']}")
            medians[f"{row['phase']}/{row['pass']}"] = float(row["median_ms"])
    return medians


# ----------------------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------------------
def pair_rounds(framework: str, workload: str, variant: str, batch_size: int, repeats: int,
                scratch: Path) -> dict[str, dict[str, list[float]]]:
    """plain, dlbench, plain, ...: for each phase/pass the dlbench medians, the plain medians and the
    rounds' ratios (dlbench over the mean of the plain medians around it)."""
    plains = [run_plain(framework, workload, batch_size)]
    mine: list[Medians] = []
    for _ in range(repeats):
        mine.append(run_dlbench(framework, workload, variant, scratch))
        plains.append(run_plain(framework, workload, batch_size))
    out: dict[str, dict[str, list[float]]] = {}
    for key in plains[0]:
        ratios = [m[key] / ((before[key] + after[key]) / 2)
                  for m, before, after in zip(mine, plains, plains[1:], strict=False)]
        out[key] = {"dlbench": [m[key] for m in mine], "plain": [p[key] for p in plains], "ratio": ratios}
    return out


def cell(ratios: list[float]) -> str:
    text = f"{statistics.median(ratios):.2f}"
    if len(ratios) > 1:
        text += f" [{min(ratios):.2f}-{max(ratios):.2f}]"
    return text


def print_table(results: dict[tuple[str, str], dict[str, dict[str, list[float]]]], frameworks: list[str],
                workloads: list[str], batch_sizes: dict[str, int]) -> None:
    print("\nratio dlbench / plain, median over rounds, forward / gradient (one thread, CPU)")
    print(f"| workload | {' | '.join(frameworks)} |")
    print(f"|---|{'---|' * len(frameworks)}")
    for workload in workloads:
        for phase in PHASES.get(workload, ("",)):
            name = f"{workload}/{phase}" if phase else workload
            cells = []
            for framework in frameworks:
                got = results.get((framework, workload))
                if got is None:
                    cells.append("-")
                    continue
                cells.append(" / ".join(cell(got[f"{phase}/{p}"]["ratio"]) for p in PASSES))
            print(f"| {name} b{batch_sizes[workload]} | {' | '.join(cells)} |")
    print("\nmedian ms, dlbench vs plain (median over runs)")
    for (framework, workload), got in results.items():
        for key, values in got.items():
            print(f"  {framework:10s} {workload:11s} {key:20s} dlbench {statistics.median(values['dlbench']):9.3f}"
                  f"  plain {statistics.median(values['plain']):9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workload", default=",".join(WORKLOADS))
    parser.add_argument("--framework", default=",".join(FRAMEWORKS))
    parser.add_argument("--repeats", type=int, default=1, help="dlbench runs per case (plain runs: one more)")
    parser.add_argument("--variant", action="append", default=[], metavar="FRAMEWORK=VARIANT")
    parser.add_argument("--json", type=Path, help="also write the raw medians and ratios here")
    parser.add_argument("--plain-child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cores", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    batch_sizes, settings = suite_settings()
    if args.plain_child:
        os.sched_setaffinity(0, {int(c) for c in args.cores.split(",")})  # before any framework loads
        medians = plain_child(args.plain_child, args.workload, args.batch_size, settings)
        print(json.dumps(medians), flush=True)
        os._exit(0)  # no interpreter shutdown of the framework (slow, and can crash), as dlbench's workers
    frameworks, workloads = args.framework.split(","), args.workload.split(",")
    variants = dict(v.split("=", 1) for v in args.variant)
    print(f"load before: {os.getloadavg()}  ({time.strftime('%H:%M:%S')})", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="dlbench-fidelity-") as scratch:
        for framework in frameworks:
            for workload in workloads:
                start = time.perf_counter()
                got = pair_rounds(framework, workload, variants.get(framework, ""), batch_sizes[workload],
                                  args.repeats, Path(scratch))
                results[(framework, workload)] = got
                summary = "  ".join(f"{k} {cell(v['ratio'])}" for k, v in got.items())
                print(f"{framework} {workload} ({time.perf_counter() - start:.0f} s): {summary}", flush=True)
    print_table(results, frameworks, workloads, batch_sizes)
    print(f"\nload after: {os.getloadavg()}  ({time.strftime('%H:%M:%S')})")
    if args.json:
        args.json.write_text(json.dumps({f"{f}/{w}": v for (f, w), v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
