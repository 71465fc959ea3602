"""Tiny workload plugins for the tests of the plugin door: one that works and one of each fault.

Registered by :func:`tests.workload_plugins.install` (a real ``dlbench.workloads`` entry point in a temporary
``.dist-info``, so that worker processes see it too) or by monkeypatching the registry's entry-point reader.
They run on the fake adapter only: its builder of a plugin workload returns the trainable count it "built".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlbench.frameworks.base import BuildRequest
from dlbench.workloads import Batch, ParamSpec, Phase, Workload, WorkloadPlugin

PARAMS = 4 * 3 + 3  # fc.kernel [4, 3] and fc.bias [3]
HERE = "tests.workload_plugins"


def tiny(name: str) -> Workload:
    """A one-layer classifier on 4 features: 15 parameters, 12 MACs per sample."""
    params = (ParamSpec("fc.kernel", (4, 3)), ParamSpec("fc.bias", (3,), "zeros"))
    return Workload(name=name, description=f"test plugin {name}", input_shape=(4,), num_classes=3,
                    params=params, phases=(Phase("", ("fc.kernel", "fc.bias"), 12, "logits"),),
                    paper_batch_size=8)


def fake_build(request: BuildRequest) -> int:
    return request.workload.trainable_params(request.phase)


def raising_build(request: BuildRequest) -> int:
    raise RuntimeError("the plugin's builder is broken\nsecond line that must not show")


def wrong_build(request: BuildRequest) -> int:
    return PARAMS - 1


def wrong_shape(spec: Workload, batch_size: int, rng: np.random.Generator) -> Batch:
    return Batch(rng.random((batch_size, 5), dtype=np.float32), np.zeros(batch_size, dtype=np.int32))


TINY = WorkloadPlugin(tiny("tiny"), builders={"fake": f"{HERE}:fake_build"}, declared_params=PARAMS)
WRONG_COUNT = WorkloadPlugin(tiny("wrong_count"), builders={"fake": f"{HERE}:fake_build"},
                             declared_params=PARAMS + 1)
BAD_SHAPE = WorkloadPlugin(tiny("bad_shape"), builders={"fake": f"{HERE}:fake_build"}, batch=wrong_shape)
RAISING = WorkloadPlugin(tiny("raising"), builders={"fake": f"{HERE}:raising_build"})
WRONG_BUILT = WorkloadPlugin(tiny("wrong_built"), builders={"fake": f"{HERE}:wrong_build"})
NOT_A_PLUGIN = 42

ENTRY_POINTS: dict[str, str] = {
    "tiny": f"{HERE}:TINY",
    "wrong_count": f"{HERE}:WRONG_COUNT",
    "bad_shape": f"{HERE}:BAD_SHAPE",
    "raising": f"{HERE}:RAISING",
    "wrong_built": f"{HERE}:WRONG_BUILT",
    "not_a_plugin": f"{HERE}:NOT_A_PLUGIN",
    "missing": "tests.no_such_module:PLUGIN",
}
BROKEN = ("wrong_count", "bad_shape", "not_a_plugin", "missing")


def install(directory: Path) -> Path:
    """A ``.dist-info`` registering :data:`ENTRY_POINTS` under ``dlbench.workloads``, in ``directory``: put it on
    ``PYTHONPATH`` (with the repository, for ``tests``) and every process sees the plugins."""
    info = directory / "dlbench_test_workloads-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dlbench-test-workloads\nVersion: 0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in ENTRY_POINTS.items())
    (info / "entry_points.txt").write_text(f"[dlbench.workloads]\n{lines}")
    return directory
