"""Say where two runs were not taken under the same conditions.

A comparison is only meaningful when both runs ran on the same machine with the same software: a
different CPU model or framework version explains a "regression" better than the code change does.
The verdicts are still computed (the user may compare across machines on purpose), but every
difference found becomes a warning line in every output format.

Every field of the environment record may be empty: partial records simply yield fewer checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dlbench.record.store import RunRecord

CALIBRATION_TOLERANCE = 0.10  # relative GFLOP/s difference of the calibration kernel worth mentioning

HOST_FIELDS = (
    ("hostname", "host name"),
    ("cpu_model", "CPU model"),
    ("cpu_flags", "CPU features"),
    ("cpu_logical", "logical CPU count"),
    ("machine", "machine architecture"),
    ("python", "Python version"),
)


def _differs(a: Any, b: Any) -> bool:
    return a not in (None, "", ()) and b not in (None, "", ()) and a != b


def _host_differences(base: RunRecord, cur: RunRecord) -> list[str]:
    base_host, cur_host = base.environment.host, cur.environment.host
    return [
        f"{label} differs: {_shown(getattr(base_host, field))} (baseline) vs {_shown(getattr(cur_host, field))}"
        " (current)"
        for field, label in HOST_FIELDS
        if _differs(getattr(base_host, field), getattr(cur_host, field))
    ]


def _shown(value: Any) -> str:
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _gpu_names(record: RunRecord) -> list[str]:
    return sorted(gpu.name or "?" for gpu in record.environment.gpus)


def _gpu_differences(base: RunRecord, cur: RunRecord) -> list[str]:
    base_gpus, cur_gpus = _gpu_names(base), _gpu_names(cur)
    if base_gpus != cur_gpus:
        return [f"GPUs differ: {', '.join(base_gpus) or 'none'} (baseline) vs {', '.join(cur_gpus) or 'none'}"
                " (current)"]
    return []


def _gpu_values(record: RunRecord, field: str) -> list[str]:
    values = (getattr(gpu, field) for gpu in record.environment.gpus)
    return sorted({str(value) for value in values if value not in (None, "")})


def _framework_libraries(record: RunRecord, frameworks: Iterable[str]) -> dict[str, dict[str, str]]:
    """Per framework, the CUDA and cuDNN versions it ran with: what the GPU probe found loaded in the process
    (``gpu_probes``: the library's own answer) wins over what the worker's framework reported (``frameworks``:
    often the version it was built against)."""
    found: dict[str, dict[str, str]] = {}
    reported = record.environment.frameworks
    probed = record.environment.gpu_probes
    for name in frameworks:
        versions: dict[str, str] = {}
        info = reported.get(name)
        backends = info.backends if info is not None else {}
        for key, label in (("cuda", "CUDA"), ("cuda_runtime", "CUDA"), ("cudnn", "cuDNN")):
            if backends.get(key) not in (None, ""):
                versions[label] = str(backends[key])
        probe = probed.get(name)
        loaded = probe.get("loaded") if isinstance(probe, Mapping) else None
        if isinstance(loaded, Mapping):
            for key, label in (("cudart", "CUDA"), ("cudnn", "cuDNN")):
                entry = loaded.get(key)
                if isinstance(entry, Mapping) and entry.get("version"):
                    versions[label] = str(entry["version"])
        if versions:
            found[name] = versions
    return found


def _gpu_software_differences(base: RunRecord, cur: RunRecord, frameworks: Iterable[str]) -> list[str]:
    """A new driver, CUDA or cuDNN changes GPU kernels (cuDNN picks other convolution algorithms) as much as a
    code change can: say so, per framework where the library is the framework's own."""
    found = []
    for field, label in (("driver", "GPU driver"), ("cuda_driver", "CUDA driver version")):
        base_values, cur_values = _gpu_values(base, field), _gpu_values(cur, field)
        if base_values and cur_values and base_values != cur_values:
            found.append(f"{label} differs: {', '.join(base_values)} (baseline) vs {', '.join(cur_values)} (current)")
    names = sorted(set(frameworks))
    base_libs, cur_libs = _framework_libraries(base, names), _framework_libraries(cur, names)
    for name in names:
        for label in ("CUDA", "cuDNN"):
            old, new = base_libs.get(name, {}).get(label), cur_libs.get(name, {}).get(label)
            if _differs(old, new):
                found.append(f"{name} {label} differs: {old} (baseline) vs {new} (current)")
    return found


def _framework_differences(base: RunRecord, cur: RunRecord, frameworks: Iterable[str]) -> list[str]:
    base_versions, cur_versions = base.framework_versions(), cur.framework_versions()
    return [
        f"{name} version differs: {base_versions[name]} (baseline) vs {cur_versions[name]} (current)"
        for name in sorted(set(frameworks))
        if _differs(base_versions.get(name), cur_versions.get(name))
    ]


def _calibration_differences(base: RunRecord, cur: RunRecord) -> list[str]:
    """The calibration kernel measures the machine itself; a gap means the machines ran at different speeds
    (another CPU, frequency scaling, a noisy neighbour), whatever the code under test did."""
    found = []
    base_peaks, cur_peaks = base.environment.calibration, cur.environment.calibration
    for threads in sorted(set(base_peaks) & set(cur_peaks)):
        base_gflops, cur_gflops = base_peaks[threads].gflops, cur_peaks[threads].gflops
        if abs(cur_gflops / base_gflops - 1) > CALIBRATION_TOLERANCE:
            found.append(
                f"machine speed differs: calibration at {threads} thread(s) {base_gflops:.1f} GFLOP/s"
                f" (baseline) vs {cur_gflops:.1f} GFLOP/s (current)"
            )
    return found


def environment_differences(base: RunRecord, cur: RunRecord, frameworks: Iterable[str]) -> list[str]:
    """One line per difference that could explain a timing change; ``frameworks``: those in the cases."""
    return [
        *_host_differences(base, cur),
        *_gpu_differences(base, cur),
        *_framework_differences(base, cur, frameworks),
        *_gpu_software_differences(base, cur, frameworks),
        *_calibration_differences(base, cur),
    ]
