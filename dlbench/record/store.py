"""Run records on disk: ``run.json`` (the snapshot: everything, raw samples included), its journal
``run.jsonl`` and ``results.csv``.

While a run measures, every finished case costs the same, however many came before it: its result is
appended to the journal as one line (:mod:`dlbench.record.journal`) with one write and an ``fsync``
(:class:`~dlbench.record.files.AppendFile`), and its row to ``results.csv`` with one write (the CSV is derived
from the record and rebuilt at every compaction, so it needs no sync of its own). Rewriting both files whole after
every case, as dlbench did before, grew with the cases already stored and made a sweep quadratic: a
6,000-case sweep spent about two hours rewriting files. ``run.json`` is compacted, rewritten atomically
(temporary file, ``fsync``, ``os.replace``, ``fsync`` of the directory) with every journal entry folded in,
when the run starts, resumes and finishes, and when asked (:meth:`RunStore.compact`, :func:`compact_run`);
``results.csv`` is rebuilt then too, one row per case.

A kill or a reboot at any moment therefore loses no stored case: the snapshot is whole, the journal's lines
are synced, and an incomplete last line (a kill inside a write) is dropped with a warning.
:func:`load_run` reads the snapshot and applies the journal, so every reader (report, compare, history,
export, resume) sees the same record whether the run finished, was interrupted or was killed; it validates
the record completely (types, ranges, schema version), so every reader gets a valid
:class:`~dlbench.record.schema.RunRecord` or one :class:`StoreError` naming the file and the field.
Versions 1 and 2 (no journal) are read too, version 1 upgraded. A lock file stops two runs from writing
into one directory at once.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from dlbench.cases.spec import WorkerKey
from dlbench.errors import StoreError, validation_message
from dlbench.record import journal
from dlbench.record.files import AppendFile, atomic_write, read_regular_bytes, uninterrupted
from dlbench.record.metrics import CSV_COLUMNS, csv_fields, result_row
from dlbench.record.results import FAILED, INTERRUPTED, OK, CaseResult
from dlbench.record.schema import (
    SCHEMA_VERSION,
    ControlReading,
    Environment,
    FrameworkRuntime,
    RunRecord,
)
from dlbench.record.schema_v1 import RunRecordV1, upgrade

RUN_FILE = "run.json"
JOURNAL_FILE = "run.jsonl"  # the journal of RUN_FILE: its name with an "l" (journal_path)
CSV_FILE = "results.csv"
LOCK_FILE = ".lock"
RECORD_FILES = (RUN_FILE, JOURNAL_FILE, CSV_FILE)  # what a run writes: never an output of another command
RUN_FILE_LIMIT = 1024 * 2**20  # far above any real sweep's raw samples; stops a runaway read
JOURNAL_VERSION = 3  # the first version whose snapshots a journal continues
READABLE_VERSIONS = (1, 2, SCHEMA_VERSION)
SNAPSHOT_INDENT = 1  # run.json stays readable in an editor, as it always was

__all__ = ["CSV_COLUMNS", "SCHEMA_VERSION", "RunRecord", "RunStore", "atomic_write", "compact_run", "load_run",
           "read_record"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def csv_header() -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(CSV_COLUMNS)
    return out.getvalue()


def csv_line(record: RunRecord, result: CaseResult, versions: dict[str, str]) -> str:
    """One row of ``results.csv`` (``versions``: framework -> version in the result's environment)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writerow(csv_fields(result_row(record.run_id, result, versions.get(result.case.framework, ""))))
    return out.getvalue()


def csv_text(record: RunRecord) -> str:
    """``results.csv``: one :func:`~dlbench.record.metrics.result_row` per result (per environment in an A/B run,
    with that environment's versions), ``None`` as an empty field."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    versions = {name: record.framework_versions(name) for name in {"", *record.environment_names()}}
    for result in record.results:
        row = result_row(record.run_id, result, versions.get(result.environment, {}).get(result.case.framework, ""))
        writer.writerow(csv_fields(row))
    return out.getvalue()


class _Header(msgspec.Struct):
    schema_version: int


def read_record(data: bytes, source: str = RUN_FILE) -> RunRecord:
    """Decode and validate a stored record of any readable version; StoreError names the file and field."""
    record = _decode_snapshot(data, source)
    check_results(record, source)
    return record


def _decode_snapshot(data: bytes, source: str) -> RunRecord:
    try:
        version = msgspec.json.decode(data, type=_Header).schema_version
    except msgspec.ValidationError as exc:
        missing = "missing required field" in str(exc)
        reason = "no schema_version" if missing else validation_message(exc)
        raise StoreError(f"{source} is not a dlbench run record ({reason})") from None
    except msgspec.DecodeError as exc:  # after ValidationError, its subclass
        raise StoreError(f"{source} is not valid JSON ({exc})") from None
    except RecursionError:
        raise StoreError(f"{source} is not a dlbench run record (nested too deeply)") from None
    if version not in READABLE_VERSIONS:
        raise StoreError(f"{source} has schema version {version}; this dlbench reads versions "
                         f"{', '.join(map(str, READABLE_VERSIONS))}")
    try:
        if version == 1:
            record = upgrade(msgspec.json.decode(data, type=RunRecordV1))
        else:
            record = msgspec.json.decode(data, type=RunRecord)
    except msgspec.ValidationError as exc:
        raise StoreError(f"{source} is a damaged run record: {validation_message(exc)}") from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise StoreError(f"{source} is a damaged run record ({exc or 'nested too deeply'})") from None
    if version < JOURNAL_VERSION and record.journal_seq:
        raise StoreError(f"{source} is a damaged run record: journal_seq: not in schema version {version}")
    return record


def check_results(record: RunRecord, source: str) -> None:
    """What the types cannot say: an ok result has samples."""
    for i, result in enumerate(record.results):
        if result.status == OK and not result.samples_ms:
            raise StoreError(f"{source} is a damaged run record: results[{i}].samples_ms: "
                             "a case with status ok has no samples")


def snapshot_bytes(record: RunRecord, source: str) -> bytes:
    """``run.json`` as written: msgspec's encoder (the standard library's took seconds for a big sweep),
    indented. It is decoded and validated again before it replaces anything, so a record that could not be
    read back (a NaN in a typed field, which JSON writes as null) is refused here, not by the next reader."""
    data = msgspec.json.format(msgspec.json.encode(record), indent=SNAPSHOT_INDENT)
    try:
        read_record(data, source)
    except StoreError as exc:
        raise StoreError(f"not writing {source}: the record would not read back ({exc})") from None
    return data


def resolve_run_file(path: Path) -> Path:
    """Accept a run directory or its run.json."""
    return path / RUN_FILE if path.is_dir() else path


def journal_path(run_file: Path) -> Path:
    """The journal that continues a snapshot: ``run.json`` -> ``run.jsonl`` (any name: its name plus "l")."""
    return run_file.with_name(run_file.name + "l")


def load_run(path: Path | str) -> RunRecord:
    """Read and validate a stored run (a directory holding run.json, or the file itself), its journal applied.

    The journal is read before the snapshot. A writer compacting in between replaces the snapshot first and
    the journal after it, and numbers every entry, so whichever snapshot is read, the journal read before it
    holds only entries the snapshot has (skipped) or entries that come after it: the record is always one
    the writer had, never one with cases missing in the middle."""
    run_file = resolve_run_file(Path(path))
    if not run_file.exists():
        raise StoreError(f"no dlbench run at {path} (expected {run_file})")
    journal_file = journal_path(run_file)
    entries = _read_journal_file(journal_file)
    data = read_regular_bytes(run_file, RUN_FILE_LIMIT, "run record", StoreError)  # a FIFO must not hang
    record = _decode_snapshot(data, str(run_file))
    if entries is not None and record.schema_version >= JOURNAL_VERSION:
        if isinstance(entries, StoreError):  # a journal that cannot be read matters only to a version-3 record
            raise entries
        replay = journal.read_journal(entries, str(journal_file), record)
        results = journal.Results(record)
        for entry in replay.entries:
            journal.apply(results, entry)
        record.journal_seq = replay.last_seq
    check_results(record, str(run_file))
    return record


def _read_journal_file(path: Path) -> bytes | StoreError | None:
    """The journal's bytes; None when there is none (a version-2 run, a copy of run.json alone: the snapshot
    is the record); the error when it cannot be read, raised only if the snapshot turns out to need it."""
    try:
        return read_regular_bytes(path, RUN_FILE_LIMIT, "run journal", StoreError)
    except StoreError as exc:
        return None if not os.path.lexists(path) else exc


def compact_run(directory: Path) -> RunRecord:
    """Fold a stored run's journal into its ``run.json`` and rebuild its ``results.csv`` (a killed run, to hand
    its files to tools that read ``run.json`` alone). Refused while a run is writing there."""
    store = RunStore.open(directory, resume=True)
    store.close()
    return store.record


class RunStore:
    """An open, locked run directory. :meth:`add` and the other changes append one journal line each."""

    def __init__(self, directory: Path, record: RunRecord | None) -> None:
        """``record`` is None only inside :meth:`open` of a resumed run, until the stored record is read."""
        self.directory = directory
        self._record = record
        self._results = journal.Results(record) if record is not None else None
        self._seq = record.journal_seq if record is not None else 0
        self._lock_handle: io.TextIOWrapper | None = None
        self._journal: AppendFile | None = None
        self._csv: AppendFile | None = None

    @property
    def record(self) -> RunRecord:
        if self._record is None:
            raise StoreError(f"the run store of {self.directory} holds no record yet")
        return self._record

    @record.setter
    def record(self, record: RunRecord) -> None:
        self._record = record
        self._results = journal.Results(record)
        self._seq = record.journal_seq

    @classmethod
    def open(cls, directory: Path, record: RunRecord | None = None, *, resume: bool = False) -> RunStore:
        """Create (or, with ``resume``, reopen) a run directory and take its lock.

        A fresh run (``record`` given) refuses a directory that already holds a run, so nothing measured is
        overwritten; a resumed run reads the stored record (validated, upgraded to the current version,
        its journal folded into a new snapshot). A run that cannot start (the lock cannot be taken, the disk
        is full) leaves nothing behind: the lock file and the directory are removed again if this call
        created them.
        """
        if record is None and not resume:
            raise ValueError("a fresh run needs its record")
        created_directory = not directory.exists()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create output directory {directory}: {exc.strerror}") from None
        if not os.access(directory, os.W_OK):
            raise StoreError(f"output directory {directory} is not writable")
        store = cls(directory, record)  # a resumed run's record is read below
        created_lock = not os.path.lexists(directory / LOCK_FILE)
        started = False  # a fresh run wrote its first files
        try:
            store._lock()
            existing = directory / RUN_FILE
            if resume:
                if not existing.exists():
                    raise StoreError(f"nothing to resume: {existing} does not exist")
                store.record = load_run(directory)
            elif existing.exists():
                raise StoreError(f"{directory} already holds a run; use --resume to finish it or another --output")
            else:
                for name in (CSV_FILE, JOURNAL_FILE):
                    if os.path.lexists(directory / name):
                        raise StoreError(f"{directory} holds a {name} that no run there wrote; it is never "
                                         "overwritten: choose another --output")
            started = not resume
            store._remove_stale_temporaries()
            store.compact()
        except BaseException:
            store.close()
            store._remove_leftovers(created_lock, started, created_directory)
            raise
        return store

    def _remove_leftovers(self, lock: bool, files: bool, directory: bool) -> None:
        """Undo what a failed start created: its lock file, the first (empty) run files of a fresh run, and
        the directory if nothing else is in it."""
        try:
            for name, created in ((LOCK_FILE, lock), *((name, files) for name in RECORD_FILES)):
                if created:
                    (self.directory / name).unlink(missing_ok=True)
            if directory:
                self.directory.rmdir()
        except OSError:
            pass  # not empty or not ours to remove: leave it

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of an atomic write that a kill cut short (``.run.json.XXXX.tmp``): with the lock
        held no one else can be writing them, and nothing ever reads them."""
        for name in RECORD_FILES:
            for path in self.directory.glob(f".{name}.*.tmp"):
                try:
                    path.unlink()
                except OSError:
                    pass  # not ours to remove (permissions): harmless where it is

    def _lock(self) -> None:
        """Take the directory's lock (``.lock``, holding the writer's pid). Any failure is one StoreError:
        another run holds it, or the file cannot be opened or written (a directory of that name, a read-only
        or full file system)."""
        path = self.directory / LOCK_FILE
        try:
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held open)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreError(f"another dlbench run is writing into {self.directory}") from None
        except OSError as exc:
            handle.close()
            raise StoreError(f"cannot lock {path}: {exc.strerror or exc}") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        except OSError as exc:
            fcntl.flock(handle, fcntl.LOCK_UN)
            try:
                handle.close()  # flushes again, and may fail again: the handle is closed all the same
            except OSError:
                pass
            raise StoreError(f"cannot write the lock file {path}: {exc.strerror or exc}") from None
        self._lock_handle = handle

    def close(self) -> None:
        """Release the files and the lock. Nothing is lost without a :meth:`finish`: the journal holds it."""
        for appender in (self._journal, self._csv):
            if appender is not None:
                appender.close()
        self._journal = self._csv = None
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    # ----- reading the open record (constant time per call, through the index) -----
    def find(self, environment: str, key: str) -> CaseResult | None:
        return self._results.find(environment, key) if self._results is not None else None

    def done_keys(self) -> set[str]:
        """Keys of cases that need not be measured again on resume (everything but interrupted ones)."""
        return {r.case.key for r in self.record.results if r.status != INTERRUPTED}

    def rounds_done(self, environment: str, key: str, wanted: int) -> int:
        """How many of the ``wanted`` rounds of a case need not be measured (again): the finished rounds of
        an ok or interrupted result; all of them once a round failed (its status says why)."""
        result = self.find(environment, key)
        if result is None:
            return 0
        if result.status in (OK, INTERRUPTED):
            return result.round_count if result.samples_ms else 0
        return wanted

    # ----- changing it: one journal line each -----
    def add(self, result: CaseResult) -> None:
        """Store a finished case (replacing an earlier result of the same case) and persist at once.

        A result that would make the record invalid (NaN from a framework's counter, say) is stored as
        ``failed`` with the reason, so that the record stays valid and readable by every command."""
        try:
            # NaN first: JSON would carry it as null, which an optional field takes for "not measured"
            msgspec.convert(msgspec.to_builtins(result), CaseResult)
            entry = self._encode(journal.ResultEntry(seq=self._seq + 1, result=result))
        except msgspec.ValidationError as exc:
            result = CaseResult(case=result.case, status=FAILED, error=f"invalid result: {validation_message(exc)}",
                                started_at=result.started_at, environment=result.environment)
            entry = self._encode(journal.ResultEntry(seq=self._seq + 1, result=result))
        stored = self._write(entry)
        assert isinstance(stored, journal.ResultEntry)
        self._append_csv(stored.result)

    def add_round(self, result: CaseResult) -> None:
        """Store one more round of a case: appended to the rounds already stored when both are ok; a round
        that failed or was interrupted sets the status but keeps the samples of the earlier rounds."""
        stored = self.find(result.environment, result.case.key)
        if stored is None or not stored.samples_ms:
            self.add(result)
        elif result.ok:
            self.add(stored.with_status(OK, "").add_round(result))
        else:
            prefix = f"round {stored.round_count + 1}: "
            self.add(stored.with_status(result.status, prefix + result.error))

    def set_framework_info(self, worker: WorkerKey, info: dict[str, Any], environment: str = "") -> None:
        """Keep what a worker's framework reported, under the worker's label (``torch/cpu/t2``); for a
        ``--python`` environment under ``environments[name]``."""
        try:
            runtime = msgspec.convert(info, FrameworkRuntime)
        except msgspec.ValidationError as exc:  # a plugin reporting odd types must not lose the run
            runtime = FrameworkRuntime(framework=worker.framework, settings={"invalid": validation_message(exc)})
        self._change(journal.WorkerEntry(seq=self._seq + 1, label=worker.label, runtime=runtime,
                                         environment=environment), "a worker's runtime")

    def add_control(self, reading: ControlReading) -> None:
        """Keep one round's control reading (see :mod:`dlbench.runner.drift`)."""
        self._change(journal.ControlEntry(seq=self._seq + 1, reading=reading), "the drift control's reading")

    def set_environment(self, environment: Environment) -> None:
        """Replace the run's environment as a whole (the calibration's peaks, measured before the cases)."""
        self._change(journal.EnvironmentEntry(seq=self._seq + 1, environment=environment), "the environment")

    def update_node(self, label: str, fields: dict[str, Any] | None = None, workers: dict[str, Any] | None = None,
                    group: dict[str, Any] | None = None, finished: float | str | None = None) -> None:
        """Keep news of a fleet node in ``environment.nodes[label]`` (:class:`~dlbench.record.journal.NodeEntry`
        says what each argument does); constant time, so the fleet driver may call it for every result."""
        self._change(journal.NodeEntry(seq=self._seq + 1, label=label, fields=fields or {}, workers=workers or {},
                                       group=group, finished=finished), f"fleet node {label}")

    def finish(self, status: str) -> None:
        """End the run: its status, the time, and a compacted ``run.json`` holding everything."""
        self.record.status = status
        self.record.finished = now_iso()
        self.compact()

    def flush(self) -> None:
        """The name of :meth:`compact` before the journal existed (it rewrote both files)."""
        self.compact()

    def compact(self) -> None:
        """Fold the journal into a new ``run.json``, rebuild ``results.csv`` (one row per case) and start an
        empty journal. Costs time in proportion to the record, so the store does it only at the start, at a
        resume and at the finish of a run, and when asked.

        Order matters for a crash in between: the snapshot first (it holds every entry so far and says so in
        ``journal_seq``), then the CSV, then the new journal; a journal left behind holds only entries the
        snapshot already has, which readers skip."""
        self.record.schema_version = SCHEMA_VERSION
        self.record.journal_seq = self._seq
        run_file = self.directory / RUN_FILE
        data = snapshot_bytes(self.record, str(run_file))
        header = journal.encode(journal.Header(run_id=self.record.run_id, seq=self._seq))
        try:
            atomic_write(run_file, data)  # on failure the old snapshot and journal stay, and stay appendable
            for appender in (self._journal, self._csv):
                if appender is not None:
                    appender.close()
            self._journal = self._csv = None
            atomic_write(self.directory / CSV_FILE, csv_text(self.record))
            atomic_write(self.directory / JOURNAL_FILE, header)
            self._journal = AppendFile(self.directory / JOURNAL_FILE)
            # Not synced per row: the journal (synced) holds every result, and a compaction rebuilds the CSV
            # from the record, so a power cut costs the CSV at most its last rows until the run resumes;
            # one sync per case instead of two halves what storing a case costs.
            self._csv = AppendFile(self.directory / CSV_FILE, sync=False)
        except OSError as exc:
            raise StoreError(f"cannot write results into {self.directory}: {exc.strerror or exc}") from None

    def _encode(self, entry: journal.AnyEntry) -> tuple[bytes, journal.AnyEntry]:
        """The entry's line, and the entry as a reader will decode it (raises msgspec.ValidationError when the
        line would not read back: the writer applies what readers will see, or nothing)."""
        line = journal.encode(entry)
        decoded = journal.decode(line)
        assert not isinstance(decoded, journal.Header)
        return line, decoded

    def _change(self, entry: journal.AnyEntry, what: str) -> None:
        try:
            encoded = self._encode(entry)
        except msgspec.ValidationError as exc:
            raise StoreError(f"cannot record {what} in {self.directory}: {validation_message(exc)}") from None
        self._write(encoded)

    def _write(self, encoded: tuple[bytes, journal.AnyEntry]) -> journal.AnyEntry:
        """Append the line (synced), then apply the entry: what is in memory is on disk. A Ctrl-C waits until
        both are done (:func:`~dlbench.record.files.uninterrupted`), so the two never disagree."""
        line, entry = encoded
        if self._journal is None:
            raise StoreError(f"the run store of {self.directory} is closed")
        with uninterrupted():
            try:
                self._journal.append(line)
            except OSError as exc:
                raise StoreError(f"cannot write results into {self.directory}: {exc.strerror or exc}") from None
            self._seq = entry.seq
            if self._results is None:
                self._results = journal.Results(self.record)
            journal.apply(self._results, entry)
        return entry

    def _append_csv(self, result: CaseResult) -> None:
        """The result's row at the end of ``results.csv``. A case stored again (its next round, a resumed
        interrupted case) gets a new row, the last one per case being current until the next compaction
        rebuilds the file with one row per case. The journal already holds the result, so a failure here
        loses no case; it still ends the run, as any failed write does."""
        if self._csv is None:
            raise StoreError(f"the run store of {self.directory} is closed")
        versions = self.record.framework_versions(result.environment)
        try:
            self._csv.append(csv_line(self.record, result, versions).encode("utf-8"))
        except OSError as exc:
            raise StoreError(f"cannot write results into {self.directory}: {exc.strerror or exc}") from None
