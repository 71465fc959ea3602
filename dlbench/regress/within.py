"""One A/B run (``dlbench run --python base=... --python head=...``) as two runs to compare.

Both sides were measured on the same machine in the same run, their rounds alternating, so a drift of
the machine touches both alike: the fairest comparison dlbench can make. Each side keeps its own
framework versions (recorded per environment), so a version difference shows as a warning, which is
exactly what an A/B of two framework versions expects to see.
"""

from __future__ import annotations

import msgspec

from dlbench.errors import DlbenchError
from dlbench.record.store import RunRecord


def environment_run(record: RunRecord, name: str) -> RunRecord:
    """The results of one environment of an A/B run, as a run of its own (id ``RUN:NAME``)."""
    names = record.environment_names()
    if name not in names:
        known = ", ".join(names) if names else "none: it was not run with --python"
        raise DlbenchError(f"run {record.run_id} has no environment {name!r} (environments: {known})")
    own = record.environment.environments.get(name)
    section = msgspec.structs.replace(record.environment, environments={},
                                      workers=own.workers if own is not None else {})
    results = [msgspec.structs.replace(r, environment="") for r in record.results if r.environment == name]
    return msgspec.structs.replace(record, run_id=f"{record.run_id}:{name}", environment=section, results=results)


def split_run(record: RunRecord, baseline: str, current: str) -> tuple[RunRecord, RunRecord]:
    if baseline == current:
        raise DlbenchError(f"--within compares two different environments, got {baseline!r} twice")
    return environment_run(record, baseline), environment_run(record, current)
