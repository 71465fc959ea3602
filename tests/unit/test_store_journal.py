"""The journal store: constant work per case, the record read back equal to the writer's at every step, a torn
last line dropped with a warning, damage refused with one line, compaction safe to interrupt."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import warnings
from pathlib import Path
from typing import Any

import msgspec
import pytest

from dlbench.cases.spec import Case, WorkerKey
from dlbench.cli import main
from dlbench.errors import StoreError
from dlbench.fleet.agent import GROUP, RESULT, STARTED
from dlbench.fleet.nodes import NodeSpec
from dlbench.fleet.sweep import StoreSink
from dlbench.record import journal
from dlbench.record.journal import JournalWarning
from dlbench.record.results import INTERRUPTED, OK, CaseResult, Memory
from dlbench.record.schema import SCHEMA_VERSION, ControlReading, RunRecord
from dlbench.record.store import (
    CSV_FILE,
    JOURNAL_FILE,
    RUN_FILE,
    RunStore,
    compact_run,
    csv_text,
    load_run,
)
from tests.conftest import run_cli
from tests.record_fixtures import config, environment


def case(batch: int, pass_: str = "forward") -> Case:
    return Case("lenet", "", pass_, "fake", "default", "cpu", 1, batch)


def ok(batch: int, samples: tuple[float, ...] = (2.0, 2.1, 1.9), **extra: Any) -> CaseResult:
    return CaseResult(case=case(batch), status=OK, samples_ms=samples, iterations_per_sample=1,
                      memory=Memory(peak_rss=3 * 2**20, baseline_rss=2**20), **extra)


def fresh(cases: int = 5) -> RunRecord:
    return RunRecord(run_id="r1", created="2026-01-01T00:00:00+00:00",
                     environment=environment({"frameworks": {"fake": {"version": "9.9"}}}),
                     config=config([case(b) for b in range(1, cases + 1)]))


def same(a: RunRecord, b: RunRecord) -> bool:
    """Equal as stored: the JSON of both (journal_seq aside, which a compaction moves)."""
    return msgspec.json.encode(msgspec.structs.replace(a, journal_seq=0)) == \
        msgspec.json.encode(msgspec.structs.replace(b, journal_seq=0))


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_a_case_appends_one_line_and_leaves_the_snapshot_alone(tmp_path: Path) -> None:
    """The work per case does not depend on the cases stored before it: run.json is not rewritten, the
    journal and the CSV grow by one line each."""
    store = RunStore.open(tmp_path, fresh(200))
    snapshot = (tmp_path / RUN_FILE).stat()
    growth = []
    for batch in range(1, 201):
        before = (tmp_path / JOURNAL_FILE).stat().st_size
        store.add(ok(batch))
        growth.append((tmp_path / JOURNAL_FILE).stat().st_size - before)
    after = (tmp_path / RUN_FILE).stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (snapshot.st_ino, snapshot.st_mtime_ns,
                                                                snapshot.st_size)
    assert max(growth) - min(growth) <= 8  # the line of a result: the same size whatever came before
    assert len((tmp_path / JOURNAL_FILE).read_text().splitlines()) == 201  # header + one line per case
    assert len(csv_rows(tmp_path / CSV_FILE)) == 200
    store.close()


def test_the_record_read_back_is_the_writers_at_every_step(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path, fresh())
    steps = [
        lambda: store.set_framework_info(WorkerKey("fake", "cpu", 1), {"framework": "fake", "version": "9.9"}),
        lambda: store.add_control(ControlReading(round=1, kernel="matmul", gflops=10.0)),
        lambda: store.add(ok(1)),
        lambda: store.add_round(ok(1, (3.0, 3.1, 2.9))),  # a second round replaces the case's result
        lambda: store.add(CaseResult(case=case(2), status=INTERRUPTED, error="stopped")),
        lambda: store.add(ok(2, gpu_telemetry={"temperature": float("nan")})),  # NaN in free JSON: null
        lambda: store.set_framework_info(WorkerKey("fake", "cpu", 1), {"framework": "fake"}, "head"),
        lambda: store.set_environment(msgspec.structs.replace(store.record.environment, packages={"x": "1"})),
        lambda: store.update_node("n1", fields={"hostname": "h"}, group={"worker": "w", "finished": "a"}),
        lambda: store.update_node("n1", finished="b"),
    ]
    for step in steps:
        step()
        assert same(load_run(tmp_path), store.record)
    store.finish("complete")
    assert same(load_run(tmp_path), store.record)
    record = load_run(tmp_path)
    assert [r.round_count for r in record.results] == [2, 1]
    assert record.results[1].gpu_telemetry == {"temperature": None}
    assert record.environment.nodes["n1"]["groups"] == [{"worker": "w", "finished": "b"}]
    store.close()


def test_csv_rows_are_appended_then_compacted_to_one_per_case(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path, fresh())
    store.add(CaseResult(case=case(1), status=INTERRUPTED, error="stopped"))
    store.add(ok(1))
    store.add(ok(2))
    rows = csv_rows(tmp_path / CSV_FILE)
    assert [r["status"] for r in rows] == ["interrupted", "ok", "ok"]  # the last row of a case is current
    assert rows[-1]["framework_version"] == "9.9" and rows[-1]["median_ms"] == "2.0"
    store.finish("complete")
    assert (tmp_path / CSV_FILE).read_text() == csv_text(load_run(tmp_path))
    assert [r["status"] for r in csv_rows(tmp_path / CSV_FILE)] == ["ok", "ok"]
    store.close()


def test_resume_compacts_the_journal_into_the_snapshot(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path, fresh())
    for batch in (1, 2, 3):
        store.add(ok(batch))
    store.close()  # as a kill leaves it: nothing compacted
    assert not json.loads((tmp_path / RUN_FILE).read_text())["results"]
    resumed = RunStore.open(tmp_path, resume=True)
    data = json.loads((tmp_path / RUN_FILE).read_text())
    assert data["schema_version"] == SCHEMA_VERSION and len(data["results"]) == 3 and data["journal_seq"] == 3
    assert (tmp_path / JOURNAL_FILE).read_text().count("\n") == 1  # only the header
    resumed.add(ok(4))
    assert [r.case.batch_size for r in load_run(tmp_path).results] == [1, 2, 3, 4]
    assert resumed.rounds_done("", case(4).key, 1) == 1 and resumed.rounds_done("", case(5).key, 1) == 0
    resumed.close()


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path, fresh())
    store.add(ok(1))
    store.add(ok(2))
    store.close()
    path = tmp_path / JOURNAL_FILE
    whole = path.read_bytes()
    for cut in (1, 10, len(whole.splitlines()[-1]) // 2, len(whole.splitlines()[-1])):
        path.write_bytes(whole[:-cut])  # the last line, without its newline and some of its bytes
        with pytest.warns(JournalWarning, match="incomplete last line 3"):
            record = load_run(tmp_path)
        assert [r.case.batch_size for r in record.results] == [1]
    path.write_bytes(whole[:-1] + b"\x00" * 40 + b"\n")  # a power cut's zeros, a newline after them
    with pytest.warns(JournalWarning):
        assert len(load_run(tmp_path).results) == 1
    with pytest.warns(JournalWarning):  # the resume drops it for good, and measures case 2 again
        resumed = RunStore.open(tmp_path, resume=True)
    resumed.add(ok(2))
    resumed.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", JournalWarning)
        assert len(load_run(tmp_path).results) == 2


def test_the_readers_say_so_and_go_on_after_a_torn_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    store = RunStore.open(run, fresh())
    store.set_framework_info(WorkerKey("fake", "cpu", 1), {"framework": "fake", "version": "9.9"})
    for batch in (1, 2, 3):
        store.add(ok(batch))
    store.close()
    with open(run / JOURNAL_FILE, "ab") as handle:
        handle.write(b'{"kind":"result","seq":5,"result":{"case"')
    for args in (("export", str(run), "--format", "json"), ("report", str(run), "-o", str(tmp_path / "rep")),
                 ("compare", str(run), str(run), "--format", "json"), ("history", str(tmp_path))):
        proc = run_cli(*args)
        assert proc.returncode in (0, 1), proc.stderr
        assert "Traceback" not in proc.stderr and "incomplete last line 6" in proc.stderr, args
    assert len(json.loads(run_cli("export", str(run), "--format", "json").stdout)["results"]) == 3


@pytest.mark.parametrize(("damage", "message"), [
    (lambda lines: [lines[0], b"{not json", *lines[2:]], "line 2"),
    (lambda lines: [lines[0], lines[2], lines[1]], "entry 2, expected 1"),  # out of order: a gap
    (lambda lines: lines[1:], "line 1 is not its header"),
    (lambda lines: [lines[0].replace(b'"r1"', b'"r2"'), *lines[1:]], "the journal of run 'r2'"),
    (lambda lines: [lines[0].replace(b'"seq":0', b'"seq":7'), *lines[1:]], "entries 1 to 7 are missing"),
    (lambda lines: [lines[0], lines[1].replace(b'"samples_ms":[2.0', b'"samples_ms":[-2.0'), *lines[2:]],
     r"line 2: result.samples_ms\[0\]"),
])
def test_damage_before_the_last_line_is_refused_in_one_line(tmp_path: Path, damage: Any, message: str) -> None:
    store = RunStore.open(tmp_path, fresh())
    for batch in (1, 2):
        store.add(ok(batch))
    store.add(ok(3))
    store.close()
    path = tmp_path / JOURNAL_FILE
    path.write_bytes(b"\n".join(damage(path.read_bytes().splitlines())) + b"\n")
    with pytest.raises(StoreError, match=message):
        load_run(tmp_path)


def test_a_compaction_cut_short_applies_nothing_twice(tmp_path: Path) -> None:
    """Killed after the new snapshot but before the new journal: the old journal's entries are in the
    snapshot already, and a control reading (appended, not replaced) must not appear twice."""
    store = RunStore.open(tmp_path, fresh())
    store.add_control(ControlReading(round=1, kernel="matmul", gflops=10.0))
    store.add(ok(1))
    stale = (tmp_path / JOURNAL_FILE).read_bytes()
    store.finish("complete")
    store.close()
    (tmp_path / JOURNAL_FILE).write_bytes(stale)
    record = load_run(tmp_path)
    assert len(record.environment.control) == 1 and len(record.results) == 1


def test_a_reader_racing_a_compaction_sees_a_whole_record(tmp_path: Path) -> None:
    """A reader reads the journal, then the snapshot; a compaction in between gives it the new snapshot and
    the old journal, whose entries the snapshot holds: the reader sees the compacted record, nothing twice."""
    store = RunStore.open(tmp_path, fresh())
    store.add_control(ControlReading(round=1, kernel="matmul", gflops=10.0))
    for batch in (1, 2):
        store.add(ok(batch))
    old_journal = (tmp_path / JOURNAL_FILE).read_bytes()
    store.compact()
    store.add(ok(3))
    record = msgspec.json.decode((tmp_path / RUN_FILE).read_bytes(), type=RunRecord)
    replay = journal.read_journal(old_journal, "run.jsonl", record)
    assert replay.entries == [] and len(record.results) == 2 and len(record.environment.control) == 1
    store.close()


def test_a_version_2_run_ignores_a_journal_beside_it(tmp_path: Path) -> None:
    record = fresh()
    record.results = [ok(1)]
    data = json.loads(msgspec.json.encode(record))
    data["schema_version"] = 2
    del data["journal_seq"]
    (tmp_path / RUN_FILE).write_text(json.dumps(data))
    (tmp_path / JOURNAL_FILE).write_text("whatever this is, a version-2 record has no journal\n")
    assert len(load_run(tmp_path).results) == 1
    data["journal_seq"] = 4
    (tmp_path / RUN_FILE).write_text(json.dumps(data))
    with pytest.raises(StoreError, match="journal_seq: not in schema version 2"):
        load_run(tmp_path)


def test_a_fresh_run_refuses_a_journal_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_FILE).write_text("mine\n")
    with pytest.raises(StoreError, match="holds a run.jsonl that no run there wrote"):
        RunStore.open(tmp_path, fresh())
    assert (tmp_path / JOURNAL_FILE).read_text() == "mine\n"


def test_a_record_that_would_not_read_back_is_never_written(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path, fresh())
    store.add(ok(1))
    with pytest.raises(StoreError, match="drift control"):
        store.add_control(ControlReading(round=1, kernel="matmul", gflops=float("nan")))
    store.close()
    assert len(load_run(tmp_path).results) == 1 and not load_run(tmp_path).environment.control


def compact_cli(capsys: pytest.CaptureFixture[str], *dirs: Path) -> tuple[int, str, str]:
    """``dlbench compact`` through the real entry point, in-process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exited:
        main(["compact", *map(str, dirs)])
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


def test_compact_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore.open(tmp_path / "run", fresh())
    store.add(ok(1))
    code, _, err = compact_cli(capsys, tmp_path / "run")  # still writing: refused
    assert code == 2 and "another dlbench run is writing" in err and "Traceback" not in err
    store.close()
    code, out, _ = compact_cli(capsys, tmp_path / "run")
    assert code == 0 and "1 result(s)" in out
    assert len(json.loads((tmp_path / "run" / RUN_FILE).read_text())["results"]) == 1
    assert compact_run(tmp_path / "run").status == "running"  # compacting changes nothing but the files
    code, out, err = compact_cli(capsys, tmp_path / "run", tmp_path / "nothing")
    assert code == 2 and "1 result(s)" in out and "nothing" in err and not (tmp_path / "nothing").exists()
    assert len(err.strip().splitlines()) == 1


def test_the_fleet_sink_keeps_nodes_and_spans_in_the_journal(tmp_path: Path) -> None:
    """The fleet driver's store writes are journal lines too: a driver killed mid-sweep leaves the same record
    (nodes, their workers, the span of each group) that a finished one would have had so far."""

    class Quiet:
        def total(self, cases: int) -> None: ...
        def result(self, result: CaseResult) -> None: ...
        def note(self, text: str) -> None: ...
        def step(self, text: str) -> None: ...

    store = RunStore.open(tmp_path, fresh())
    sink = StoreSink({None: store}, Quiet())
    node = NodeSpec(node_id="abc", hostname="h1", cpus=2, gpus=0, resources={"CPU": 2}, label="h1")
    sink.node_joined(node, {"hostname": "h1", "cores": [0, 1], "environment": {"python": "3.11"}})
    sink.runtime(node, WorkerKey("fake", "cpu", 1), {"framework": "fake", "version": "9.9"})
    sink.span(node, {"event": STARTED, "worker": "fake/cpu/t1", "at": 1.0, "cores": [0], "cases": 2})
    for batch, at in ((1, 2.0), (2, 3.0)):
        sink.span(node, {"event": RESULT, "at": at})
        sink.result(None, ok(batch, node_id="abc"))
    sink.span(node, {"event": GROUP, "worker": "fake/cpu/t1", "at": 4.0})
    store.close()  # killed: nothing compacted
    record = load_run(tmp_path)
    assert same(record, store.record)
    entry = record.environment.nodes[node.label]
    assert entry["hostname"] == "h1" and entry["workers"]["fake/cpu/t1"]["version"] == "9.9"
    assert entry["groups"] == [{"worker": "fake/cpu/t1", "started": 1.0, "finished": 4.0, "cores": [0],
                                "cases": 2}]
    assert len(record.results) == 2


def test_copies_of_a_killed_run_read_alike(tmp_path: Path) -> None:
    """The record is the pair of files: a copy of the directory reads the same (every reader goes through
    load_run), and run.json copied alone is the snapshot, a valid if older record."""
    store = RunStore.open(tmp_path / "a", fresh())
    store.add(ok(1))
    store.close()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert same(load_run(tmp_path / "a"), load_run(tmp_path / "b"))
    os.makedirs(tmp_path / "c")
    shutil.copy(tmp_path / "a" / RUN_FILE, tmp_path / "c" / RUN_FILE)
    assert load_run(tmp_path / "c").results == []


def test_a_journal_that_is_not_a_regular_file_is_refused_not_waited_for(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path, fresh())
    store.close()
    (tmp_path / JOURNAL_FILE).unlink()
    os.mkfifo(tmp_path / JOURNAL_FILE)  # reading a FIFO would block until a writer came: it must not be read
    with pytest.raises(StoreError, match="run journal .* is not a regular file"):
        load_run(tmp_path)


def test_ctrl_c_while_a_result_is_stored_lands_after_it(tmp_path: Path) -> None:
    """A Ctrl-C that arrives while a line is written waits until the line and its bookkeeping are both done:
    the record in memory (which the interrupted run compacts) and the journal never disagree."""
    store = RunStore.open(tmp_path, fresh())
    real_append = store._journal.append  # type: ignore[union-attr]

    def append_then_interrupted(data: bytes) -> None:
        real_append(data)
        os.kill(os.getpid(), signal.SIGINT)  # delivered at the next bytecode, were it not held

    store._journal.append = append_then_interrupted  # type: ignore[union-attr,method-assign]
    with pytest.raises(KeyboardInterrupt):
        store.add(ok(1))
    assert [r.case.key for r in store.record.results] == [case(1).key]  # applied before the interrupt
    store.finish("interrupted")
    store.close()
    assert [r.case.key for r in load_run(tmp_path).results] == [case(1).key]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back
