"""``dlbench env``: the environment record stored beside every result, with framework details."""

from __future__ import annotations

import json

import click

from dlbench.cases.spec import WorkerKey
from dlbench.display.progress import console, out
from dlbench.display.terminal import plain
from dlbench.frameworks.registry import installed_adapters
from dlbench.machine import capture as environment
from dlbench.measure.timing import MeasureConfig
from dlbench.process.placement import cores_for
from dlbench.runner.executor import LocalExecutor
from dlbench.runner.protocol import WorkerJob


def framework_info(threads: int) -> dict[str, object]:
    """Start each installed framework in a worker (as a run would) and collect what it reports."""
    info: dict[str, object] = {}
    executor = LocalExecutor()
    for adapter in installed_adapters():
        job = WorkerJob(key=WorkerKey(adapter.name, "cpu", threads), cores=cores_for(threads), cases=(),
                        measure=MeasureConfig())

        def keep(worker: WorkerKey, runtime: dict[str, object]) -> None:
            info[worker.framework] = runtime

        executor.probe(job, keep)
        info.setdefault(adapter.name, {"error": "framework failed to start; see dlbench run for details"})
    return info


@click.command("env")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.option("--frameworks/--no-frameworks", default=True, show_default=True,
              help="Start each installed framework to read its versions and backends.")
@click.option("--calibrate", is_flag=True, help="Also measure float32 matmul GFLOP/s per thread count.")
def command(as_json: bool, frameworks: bool, calibrate: bool) -> None:
    """Show the environment record (host, GPUs, packages, frameworks, git commit)."""
    record = environment.capture()
    threads = len(record["host"]["affinity"])
    if frameworks:
        record["frameworks"] = framework_info(threads)
    if calibrate:
        from dlbench.measure.calibrate import calibrate as run_calibration

        record["calibration"] = {str(k): v for k, v in run_calibration(sorted({1, threads})).items()}
    if as_json:
        click.echo(json.dumps(record, indent=2, default=str, allow_nan=False))
        return
    host = record["host"]
    console.print(plain(host["cpu_model"], "bold") + plain(f", {host['cpu_logical']} logical cores, "
                  f"{host['memory_gb']} GB, {host['os']}, Python {host['python']}"))
    out.print_json(json.dumps({k: v for k, v in record.items() if k != "host"}, default=str, allow_nan=False))
