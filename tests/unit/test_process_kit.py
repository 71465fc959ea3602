"""The process kit (dlbench.process): placement, typed messages, deadlines, the memory watchdog, group kill,
die-with-parent and an honest account of how a child ended."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from dlbench.cases.spec import Case
from dlbench.process import child as child_module
from dlbench.process.allocator import allocator_environment
from dlbench.process.child import Cause, Child, ChildSpec, Ended
from dlbench.process.messages import Codec
from dlbench.process.placement import THREAD_ENV, cores_for, place
from dlbench.record.results import CaseResult, Memory
from dlbench.runner import protocol
from tests.conftest import ROOT
from tests.kit_jobs import CODEC, Report

FIRST_CORE = min(os.sched_getaffinity(0))


def spec(threads: int = 1, env: dict[str, str] | None = None, memory_limit_mb: float | None = None) -> ChildSpec:
    return ChildSpec(module="tests.kit_jobs", placement=place(threads), codec=CODEC,
                     env={"PYTHONPATH": str(ROOT), **(env or {})}, memory_limit_mb=memory_limit_mb)


def soon(seconds: float) -> float:
    return time.monotonic() + seconds


def test_a_child_is_pinned_and_has_its_thread_environment_from_the_start() -> None:
    with Child(spec(1, env={"KIT_TEST_EXTRA": "yes"}), {"action": "report"}) as child:
        report = child.receive(soon(60))
        assert report == Report([FIRST_CORE], "1", "yes")
        assert child.receive(soon(60)) is Ended.EXITED
        ending = child.ending()
    assert (ending.cause, ending.returncode, ending.detail) == (Cause.EXIT, 0, "exit code 0")


def test_placement_gives_n_threads_exactly_n_cores() -> None:
    assert cores_for(2, [5, 3, 9]) == (3, 5)
    assert place(1, [4]).environment() == {**{name: "1" for name in THREAD_ENV}, "CUDA_VISIBLE_DEVICES": "",
                                           **allocator_environment()}
    with pytest.raises(ValueError, match="3 threads requested but only 2 cores"):
        cores_for(3, [0, 1])


def test_messages_are_typed_both_ways_and_garbage_is_ignored() -> None:
    case = Case("lenet", "", "forward", "fake", "default", "cpu", 1, 2)
    result = CaseResult(case, "ok", samples_ms=(1.0, 2.0, 3.0), memory=Memory(peak_rss=10), affinity=(0,))
    codec = protocol.CODEC
    from dlbench.process.messages import encode

    assert codec.decode(encode(protocol.Finished(result))) == protocol.Finished(result)
    assert codec.decode(encode(protocol.Started(case.key))) == protocol.Started(case.key)
    for garbage in (b"", b"not json", b'{"kind": "nope", "body": {}}', b'{"kind": "started", "body": {}}', b"[1]"):
        assert codec.decode(garbage) is None
    with pytest.raises(ValueError, match="share a kind"):
        Codec(Report, Report)


def test_an_exit_code_comes_with_the_tail_of_stderr() -> None:
    with Child(spec(), {"action": "fail"}) as child:
        assert isinstance(child.receive(soon(60)), Report)
        assert child.receive(soon(60)) is Ended.EXITED
        ending = child.ending()
    assert (ending.cause, ending.returncode) == (Cause.EXIT, 3)
    assert ending.last_line == "something went wrong inside"


def test_a_crash_is_named_by_its_signal() -> None:
    with Child(spec(), {"action": "abort"}) as child:
        while child.receive(soon(60)) is not Ended.EXITED:
            pass
        ending = child.ending()
    assert (ending.cause, ending.detail) == (Cause.SIGNAL, "killed by SIGABRT")


def test_a_deadline_kills_the_child_and_everything_it_started() -> None:
    with Child(spec(), {"action": "hang"}) as child:
        assert isinstance(child.receive(soon(60)), Report)
        grandchild = child.receive(soon(60))
        assert isinstance(grandchild, Report) and grandchild.extra == "grandchild"
        started = time.monotonic()
        assert child.receive(soon(0.3)) is Ended.TIMEOUT
        assert time.monotonic() - started < 5  # it waited for the deadline, not for a poll interval
        assert child.ending().cause is Cause.TIMEOUT
    _, alive = psutil.wait_procs([psutil.Process(grandchild.affinity[0])], timeout=10)
    assert not alive


def test_a_short_deadline_is_not_rounded_up_to_a_poll_interval() -> None:
    """A message that comes after the deadline is never returned as if it had come in time."""
    with Child(spec(), {"action": "late", "pause_s": 0.5}) as child:
        assert isinstance(child.receive(soon(60)), Report)
        assert child.receive(soon(0.05)) is Ended.TIMEOUT
    with Child(spec(), {"action": "late", "pause_s": 0.05}) as child:
        assert isinstance(child.receive(soon(60)), Report)
        late = child.receive(soon(30))
        assert isinstance(late, Report) and late.extra == "late"


def test_the_memory_watchdog_kills_a_child_above_the_limit() -> None:
    with Child(spec(memory_limit_mb=150), {"action": "allocate"}) as child:
        assert isinstance(child.receive(soon(60)), Report)
        assert child.receive(soon(60)) is Ended.MEMORY
        assert child.ending().cause is Cause.MEMORY_LIMIT


def test_a_sigkill_from_outside_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    with Child(spec(), {"action": "hang"}) as child:
        child.receive(soon(60))
        child.receive(soon(60))
        os.kill(child.pid, signal.SIGKILL)
        assert child.receive(soon(60)) is Ended.EXITED
        ending = child.ending()
    assert (ending.cause, ending.detail) == (Cause.SIGNAL, "killed by SIGKILL")


def test_a_sigkill_while_the_kernel_oom_killer_acted_is_an_oom(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = iter([7, 8])  # the kernel's oom_kill counter at the child's start and at its end
    monkeypatch.setattr(child_module, "kernel_oom_kills", lambda: next(counts))
    with Child(spec(), {"action": "hang"}) as child:
        child.receive(soon(60))
        os.kill(child.pid, signal.SIGKILL)
        while child.receive(soon(60)) is not Ended.EXITED:
            pass
        assert child.ending().cause is Cause.KERNEL_OOM


def test_the_kernel_oom_counter_is_read_where_the_kernel_has_one() -> None:
    count = child_module.kernel_oom_kills()
    assert count is None or count >= 0


def test_a_child_dies_with_its_parent(tmp_path: object) -> None:
    """kill -9 of the process holding the Child: the child (and its group) go too."""
    script = (
        "import json, sys, time\n"
        "from dlbench.process.child import Child, ChildSpec\n"
        "from dlbench.process.placement import place\n"
        "from tests.kit_jobs import CODEC\n"
        "child = Child(ChildSpec('tests.kit_jobs', place(1), CODEC), {'action': 'hang'})\n"
        "child.start()\n"
        "child.receive(time.monotonic() + 60)\n"
        "print(json.dumps(child.pid), flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout is not None
        pid = json.loads(holder.stdout.readline())
        holder.kill()
        holder.wait()
        _, alive = psutil.wait_procs([psutil.Process(pid)], timeout=10)
        assert not alive
    finally:
        holder.kill()
