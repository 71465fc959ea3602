"""What to run: suite files read and checked, then expanded into the cases this machine can run.

``suite`` reads a suite file (TOML, data only) and applies the command line's overrides; ``planner`` checks
the result against this machine (installed frameworks, variants, cores, GPUs) and expands it into
:class:`~dlbench.cases.spec.Case` objects; ``gpu_probe`` is the planner's child that starts each framework on
the GPU before a GPU run is allowed to begin.
"""

from __future__ import annotations

from typing import Any

# The names of the 0.1 module ``dlbench.plan``, now ``dlbench.plan.planner``: kept for one release.
_PLANNER_NAMES = frozenset({"FLEET_CORES", "MAX_CASES", "Plan", "resolve_frameworks", "resolve_variants",
                            "GpuCheck", "check_gpu", "check_selected_gpu", "make_plan"})


def __getattr__(name: str) -> Any:
    if name not in _PLANNER_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import dlbench
    from dlbench.plan import planner

    dlbench.moved_warning(f"{__name__}.{name}", f"{planner.__name__}.{name}")
    return getattr(planner, name)
