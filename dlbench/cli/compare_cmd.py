"""``dlbench compare BASELINE CURRENT``: regression verdicts between two runs, and an exit code for CI.

Exit codes: 0 no case regressed, 1 some case regressed in what ``--fail-on`` names (time by default: slower
significantly and beyond the threshold; with ``memory``, also a memory figure that grew; with ``--strict``
also a case that newly failed or went missing) or nothing could be compared (no case has a
timing in both runs: they share no case, or every current case failed; ``--allow-empty`` relaxes this),
2 bad input (unreadable run, bad threshold, standard output or a report file that cannot be written).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from dlbench.cli.options import CommaList, Number, flatten
from dlbench.cli.paths import NonEmptyPath, check_output_file
from dlbench.display.terminal import stdout_console
from dlbench.record.files import write_text
from dlbench.record.schema import SAMPLES
from dlbench.record.store import load_run
from dlbench.regress.threshold import parse_alpha, parse_threshold
from dlbench.regress.verdict import ASPECTS, MODERATED, ROUND_TESTS, TIME_ASPECT, Policy, compare_runs
from dlbench.regress.verdict_render import render_json, render_markdown, table_renderable
from dlbench.regress.within import split_run

FORMATS = ("table", "markdown", "json")
RunPath = NonEmptyPath(path_type=Path)
FilePath = NonEmptyPath(path_type=Path, dir_okay=False)


@click.command("compare")
@click.argument("baseline")
@click.argument("current")
@click.option("--threshold", default="5%", show_default=True,
              help="Relative change of the median time that counts: 5% or 0.05.")
@click.option("--alpha", default="0.01", show_default=True,
              help="Significance level of the two-sided test (round level, or Mann-Whitney U on one round's samples).")
@click.option("--memory-threshold", default="10%", show_default=True,
              help="Relative growth of the memory figure a case is judged on (device or framework peak, else "
                   "peak RSS) that counts.")
@click.option("--fail-on", "fail_on", multiple=True, type=CommaList(label="verdict"),
              help="Which regressions exit 1: time, memory or time,memory [time]. Both verdicts are shown "
                   "either way.")
@click.option("--memory-floor", type=Number(0, 2.0**30), default=8.0, show_default=True,
              help="A memory reading must also grow by more than this many MiB.")
@click.option("--format", "format_", type=click.Choice(FORMATS), default="table", show_default=True,
              help="What to print: a terminal table, a pull-request comment (markdown) or JSON.")
@click.option("--markdown", "markdown_file", type=FilePath,
              help="Also write the markdown comment to this file.")
@click.option("--json", "json_file", type=FilePath, help="Also write the JSON verdicts to this file.")
@click.option("--strict", is_flag=True, help="Also exit 1 when a case newly failed or is missing.")
@click.option("--allow-empty", is_flag=True,
              help="Exit 0 even when nothing could be compared (no case has a timing in both runs).")
@click.option("--normalize", type=click.Choice(("none", "control")), default="none", show_default=True,
              help="control: scale the current times by the drift control's speed ratio (both runs need it; "
                   "sound for compute-bound cases on one CPU whose speed changed uniformly).")
@click.option("--round-test", type=click.Choice(ROUND_TESTS), default=MODERATED, show_default=True,
              help="Test of cases measured in rounds in both runs: moderated (each case's between-round "
                   "variance shrunk towards a prior fitted across all cases; more power with few rounds) "
                   "or t (each case on its own).")
@click.option("--within", "within", type=RunPath,
              help="An A/B run (dlbench run --python NAME=PATH ...): BASELINE and CURRENT are then the names "
                   "of two of its environments, e.g. --within results/ab base head.")
@click.pass_context
def command(ctx: click.Context, baseline: str, current: str, threshold: str, alpha: str,
            memory_threshold: str, fail_on: tuple[tuple[str, ...], ...], memory_floor: float, format_: str,
            markdown_file: Path | None,
            json_file: Path | None, strict: bool, allow_empty: bool, normalize: str, round_test: str,
            within: Path | None) -> None:
    """Compare CURRENT against BASELINE (run directories or their run.json), case by case; with --within
    RUN, two environments of one A/B run.

    Time and memory get a verdict each. Time regresses when the median grew beyond the threshold AND the
    samples differ significantly; memory when the case's memory figure grew beyond the memory threshold (and,
    measured in rounds, beyond its variation between rounds). --fail-on says which of them exit 1. Take both
    runs on the same machine: differences in CPU, Python or framework versions are reported as warnings.
    Exit codes: 0 no regression, 1 a regression or nothing compared (no case timed in both runs; --allow-empty: 0),
    2 bad input.
    """
    aspects = tuple(dict.fromkeys(flatten(fail_on))) or (TIME_ASPECT,)
    for aspect in aspects:
        if aspect not in ASPECTS:
            raise click.BadParameter(f"unknown verdict {aspect!r} (choose from {', '.join(ASPECTS)})",
                                     param_hint="--fail-on")
    policy = Policy(
        fail_on=aspects,
        threshold=parse_threshold(threshold),
        alpha=parse_alpha(alpha),
        memory_threshold=parse_threshold(memory_threshold, "memory threshold"),
        memory_floor_bytes=int(memory_floor * 2**20),
        normalize_control=normalize == "control",
        round_test=round_test,
        paired=within is not None,  # round r of both environments ran back to back: pair them
    )
    for name, value in (("BASELINE", baseline), ("CURRENT", current)):
        if not value:
            raise click.BadParameter("an empty path names nothing (write . for the current directory)",
                                     param_hint=name)
    if within is not None:
        record = load_run(within)
        base_run, cur_run = split_run(record, baseline, current)
        inputs = [within]
        # the environments took turns sample by sample: pair the samples too
        policy = replace(policy, paired_samples=record.config.interleave == SAMPLES)
    else:
        base_run, cur_run = load_run(Path(baseline)), load_run(Path(current))
        inputs = [Path(baseline), Path(current)]
    for option, path in (("--markdown", markdown_file), ("--json", json_file)):
        if path is not None:
            check_output_file(path, inputs, option)
    comparison = compare_runs(base_run, cur_run, policy)
    if markdown_file is not None:
        write_text(markdown_file, render_markdown(comparison))
    if json_file is not None:
        write_text(json_file, render_json(comparison, strict, allow_empty))
    if format_ == "table":
        stdout_console().print(table_renderable(comparison))
    else:
        text = (render_markdown(comparison) if format_ == "markdown"
                else render_json(comparison, strict, allow_empty))
        click.echo(text, nl=False)
    ctx.exit(comparison.exit_code(strict, allow_empty))
