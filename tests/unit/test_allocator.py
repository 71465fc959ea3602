"""The C heap of a child (dlbench.process.allocator): glibc's thresholds fixed where its dynamic ones end up,
the user's own malloc settings kept, and the variables really reaching glibc in a child."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dlbench.process.allocator import (
    MMAP_THRESHOLD_BYTES,
    TRIM_THRESHOLD_BYTES,
    allocator_environment,
    allocator_setting,
)
from dlbench.process.placement import place

# A child that allocates, touches and frees an 8 MiB buffer 40 times and prints its minor page faults.
FAULTS = """
import ctypes, resource
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 8 * 2**20
def once():
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)
    libc.free(p)
once()  # the first one faults in every case
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    once()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_a_child_gets_glibcs_thresholds_fixed_where_the_dynamic_ones_end() -> None:
    env = allocator_environment({})
    assert env == {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(64 * 2**20)}
    assert TRIM_THRESHOLD_BYTES == 2 * MMAP_THRESHOLD_BYTES
    expected = f"MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD_BYTES} MALLOC_TRIM_THRESHOLD_={TRIM_THRESHOLD_BYTES}"
    assert allocator_setting(env) == expected


@pytest.mark.parametrize("inherited", [{"MALLOC_MMAP_THRESHOLD_": "131072"}, {"MALLOC_TOP_PAD_": "0"},
                                       {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}])
def test_the_users_own_malloc_settings_are_kept(inherited: dict[str, str]) -> None:
    assert allocator_environment(inherited) == {}
    ((name, value),) = inherited.items()
    assert allocator_setting(inherited) == f"{name}={value}"  # recorded as the user's, not as glibc's defaults
    assert allocator_setting({}) == "glibc defaults (dynamic mmap and trim thresholds)"


def test_every_placed_child_gets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "")
    env = place(1, [0]).environment()
    assert env["MALLOC_MMAP_THRESHOLD_"] == str(MMAP_THRESHOLD_BYTES)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert "MALLOC_TRIM_THRESHOLD_" not in place(1, [0]).environment()


def faults(env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_glibc_obeys_them_a_freed_buffer_is_reused_not_faulted_in_again() -> None:
    """The mechanism itself: with the thresholds fixed, the buffer stays in the heap (almost no faults);
    with a fixed small mmap threshold it is fresh pages every time (2,048 faults of 4 KiB pages per 8 MiB, or a
    few with transparent huge pages: at least one per iteration either way)."""
    steady = faults(allocator_environment({}))
    fresh = faults({"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert steady < 40
    assert fresh >= 40 and fresh > 20 * max(steady, 1)
