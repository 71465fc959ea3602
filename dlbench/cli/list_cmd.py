"""``dlbench list``: frameworks, workloads and suites known here (no framework is imported)."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from dlbench.display.progress import out
from dlbench.display.terminal import plain
from dlbench.formatting import fmt_count
from dlbench.frameworks.base import Adapter
from dlbench.frameworks.registry import adapter_names, broken_adapters, get_adapter
from dlbench.machine.nvml import nvml_gpus
from dlbench.plan.suite import available_suites, load_suite
from dlbench.workloads import broken_workloads, layer_workloads, networks


def frameworks_table(show_hidden: bool) -> Table:
    table = Table(title="frameworks")
    for column in ("name", "installed", "version", "devices", "variants (default first)", "convolutions"):
        table.add_column(column)
    gpus = list(nvml_gpus())
    for name in adapter_names(include_hidden=show_hidden):
        adapter = get_adapter(name)
        installed = adapter.is_installed()
        devices = "cpu" + (", gpu" if installed and adapter.gpu_usable(gpus) else "")
        variants = [adapter.default_variant] + [v for v in adapter.variants if v != adapter.default_variant]
        table.add_row(plain(name), "yes" if installed else "no", plain(adapter.version() or ""),
                      devices if installed else "", plain(", ".join(_variant_label(adapter, v) for v in variants)),
                      plain(", ".join(adapter.conv_algorithms)))
    for name, reason in broken_adapters().items():
        table.add_row(plain(name), Text("broken", "red"), "", "", plain(reason))
    return table


def _variant_label(adapter: Adapter, variant: str) -> str:
    """A variant with where it exists, when that is not everywhere: ``cudnn_benchmark (gpu)``,
    ``plain_attention (transformer)``."""
    workloads = adapter.variant_workloads.get(variant, ())
    layers = [w for w in workloads if w in layer_workloads()]
    named = [w for w in workloads if w not in layer_workloads()] + (["conv:* layers"] if layers else [])
    limits = [*adapter.variant_devices.get(variant, ()), *named]
    return f"{variant} ({', '.join(limits)})" if limits else variant


def workloads_table() -> Table:
    table = Table(title="workloads (built-in and plugins; --conv applies to those with convolutions)")
    for column in ("workload", "phase", "trainable params", "forward MACs/sample", "paper batch", "input",
                   "convolutions"):
        table.add_column(column, justify="right" if "params" in column or "MACs" in column else "left")
    for w in (*networks().values(), *layer_workloads().values()):
        convs = ", ".join(f"{c.name} {c.k}x{c.k}/{c.stride}" for c in w.convolutions) if not w.is_layer else \
            f"stride {w.convolutions[0].stride}, padding {w.convolutions[0].padding}"
        for phase in w.phase_names:
            table.add_row(w.name, phase, fmt_count(w.trainable_params(phase)), fmt_count(w.macs(phase)),
                          str(w.paper_batch_size), "x".join(map(str, w.input_shape)), convs)
    for name, reason in broken_workloads().items():  # a broken plugin: one line, the others listed as usual
        table.add_row(plain(name), Text("broken", "red"), "", "", "", "", plain(reason))
    return table


def suites_table() -> Table:
    table = Table(title="suites")
    table.add_column("suite")
    table.add_column("description")
    for name in available_suites():
        try:
            description = plain(load_suite(name).description)
        except Exception as exc:  # a broken suite file is listed, not fatal
            description = plain(f"invalid: {exc}", "red")
        table.add_row(plain(name), description)
    return table


@click.command("list")
@click.option("--all", "show_hidden", is_flag=True,
              help="Also list hidden adapters (the Keras backends, the test fake).")
def command(show_hidden: bool) -> None:
    """List frameworks (installed?, version, devices, variants), workloads (phases, params, MACs), suites."""
    out.print(frameworks_table(show_hidden))
    out.print(workloads_table())
    out.print(suites_table())
