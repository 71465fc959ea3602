"""``dlbench verify``: check that every framework computes the canonical workloads (issue 5).

Thin: the plan validates the input, each framework is evaluated in its own worker process, the session
compares, a renderer prints. ``--biases`` chooses the verification weights (default ``random``: canonical
weights with seeded non-zero biases, so that a misplaced bias shows; ``canonical``: exactly the weights of the
timed runs, all biases zero); :mod:`dlbench.verify.biases` explains why ``random`` is the default.

Exit codes: 0 all agree, 1 a mismatch or an implementation that could not be checked, 2 bad input (raised as
DlbenchError, mapped by ``dlbench.cli.main``).
"""

from __future__ import annotations

import time

import click

from dlbench.cases.spec import MAX_BATCH_SIZE, MAX_SEED, MAX_THREADS, NATIVE_CONV, PRECISIONS
from dlbench.cli.options import CommaList, Number, flatten
from dlbench.display.terminal import make_console
from dlbench.measure.timing import MAX_SECONDS
from dlbench.process.placement import available_cores
from dlbench.verify.biases import BIAS_MODES, DEFAULT_BIASES
from dlbench.verify.collect import ImplResult
from dlbench.verify.judge import verify_all
from dlbench.verify.launch import evaluate_isolated
from dlbench.verify.render import print_table, to_json
from dlbench.verify.selection import VerifyPlan, make_plan

DEFAULT_BATCH = 2
TABLE_WIDTH = 160  # the error table has 11 columns: never squeeze it into a narrow pipe


# fmt: off
@click.command("verify")
@click.option("--framework", "-f", "frameworks", multiple=True, type=CommaList(label="framework"),
              help="Frameworks to check (comma list or repeated). Default: every installed framework.")
@click.option("--workload", "-w", "workloads", multiple=True, type=CommaList(label="workload"),
              help="Workloads, or single phases such as autoencoder/pretrain2. Default: all.")
@click.option("--variant", "variants", multiple=True, type=CommaList(label="variant"),
              help="Only these variants. Default: every variant of each framework.")
@click.option("--conv", "convs", multiple=True, type=CommaList(label="convolution algorithm"),
              help="Convolution algorithms to check on the workloads with convolutions: native (default), "
                   "im2col, fft, direct, or all.")
@click.option("--batch-size", "-b", type=Number(1, MAX_BATCH_SIZE, integer=True), default=DEFAULT_BATCH,
              show_default=True,
              help="Batch size of the seeded input batch.")
@click.option("--seed", type=Number(0, MAX_SEED, integer=True), default=0, show_default=True,
              help="Seed of the canonical weights, the random biases and the input batch.")
@click.option("--biases", type=click.Choice(BIAS_MODES), default=DEFAULT_BIASES, show_default=True,
              help="random: the canonical weights with every zero-initialised bias replaced by seeded values "
                   "in +-1/sqrt(fan_in), the same for every framework, so that a bias loaded into the wrong place "
                   "is caught (all-zero biases hide it). canonical: exactly the canonical initial weights of "
                   "the timed runs, zero biases.")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="float32", show_default=True,
              help="Precision recipe of every implementation (see docs/precision.md); the tolerances are "
                   "derived from its unit roundoff.")
@click.option("--threads", type=Number(0, MAX_THREADS, integer=True), default=0, show_default=True,
              help="Threads per framework worker, pinned to that many cores as in run; 0 = every core here.")
@click.option("--timeout", "timeout_s", type=Number(1, MAX_SECONDS), default=1800.0, show_default=True,
              help="Seconds one framework's worker may take for all its checks.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
# fmt: on
def command(
    frameworks: tuple[tuple[str, ...], ...],
    workloads: tuple[tuple[str, ...], ...],
    variants: tuple[tuple[str, ...], ...],
    convs: tuple[tuple[str, ...], ...],
    batch_size: int,
    seed: int,
    biases: str,
    device: str,
    precision: str,
    threads: int,
    timeout_s: float,
    fmt: str,
) -> int:
    """Prove that every framework computes the same workload.

    Feeds the canonical initial weights and one seeded batch (dropout off) to every framework and variant,
    and compares forward output, loss and the gradient of every trainable parameter with a float64 NumPy
    reference and pairwise, plus parameter counts and MACs against docs/workloads.md. Exit code 1 names the
    tensor and the implementation that disagree.

    By default (--biases random) every bias, zero in the canonical weights, gets a seeded non-zero value,
    identical everywhere; all other weights stay canonical. This is strictly stronger: a correct adapter
    passes with any biases, while one that loads a bias into the wrong place (gate blocks permuted, another
    layer's, twice, not at all) computes the canonical function as long as the biases are zero. --biases
    canonical checks the exact zero-bias weights of the timed runs.
    """
    plan = make_plan(flatten(frameworks), flatten(workloads), flatten(variants), flatten(convs), device)
    results = collect(plan, batch_size, seed, device, threads or len(available_cores()), timeout_s, biases,
                      precision)
    report = verify_all(plan.targets, results, batch_size, seed, device, plan.notes, biases, precision)
    if fmt == "json":
        click.echo(to_json(report))
    else:
        print_table(report, make_console(highlight=False, width=max(TABLE_WIDTH, make_console().width)))
    # ctx.exit works both under dlbench.cli.main (standalone_mode=False: the code is returned) and standalone.
    click.get_current_context().exit(report.exit_code)
    return report.exit_code


def collect(
    plan: VerifyPlan,
    batch_size: int,
    seed: int,
    device: str,
    threads: int,
    timeout_s: float,
    biases: str = DEFAULT_BIASES,
    precision: str = "float32",
) -> list[ImplResult]:
    """Each framework in its own worker, one after the other (progress on stderr, results on stdout)."""
    progress = make_console(stderr=True, highlight=False)
    results: list[ImplResult] = []
    for framework in plan.frameworks:
        started = time.perf_counter()
        variants = "/".join(framework.variants)
        algorithms = f", convolutions {'/'.join(plan.convs)}" if plan.convs != (NATIVE_CONV,) else ""
        progress.print(
            f"verify: {framework.name} ({variants}) on {len(plan.targets)} workload phases, {biases} biases, "
            f"{precision}{algorithms} ..."
        )
        results += evaluate_isolated(
            framework.name,
            plan.targets,
            framework.variants,
            batch_size,
            seed,
            device,
            threads,
            timeout_s,
            biases,
            precision=precision,
            convs=plan.convs,
        )
        progress.print(f"verify: {framework.name} done in {time.perf_counter() - started:.1f} s")
    return results
