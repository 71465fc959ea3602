"""Run records on disk: ``run.json`` (everything, raw samples included) and ``results.csv``.

Both files are rewritten atomically (temporary file, ``fsync``, ``os.replace``, then an ``fsync`` of the
directory so that the rename itself survives a power cut) after every finished case: a kill or a reboot at
any moment leaves readable files holding every case measured so far. A lock file stops two runs from
writing into one directory at once. :func:`load_run` validates a record completely (types, ranges, schema
version), so every reader gets a valid :class:`~dlbench.record.schema.RunRecord` or one :class:`StoreError` naming
the file and the field; version-1 files are upgraded on reading.
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
from dlbench.record.files import atomic_write, read_regular_text
from dlbench.record.metrics import CSV_COLUMNS, csv_fields, result_row
from dlbench.record.results import FAILED, INTERRUPTED, OK, CaseResult
from dlbench.record.schema import SCHEMA_VERSION, ControlReading, EnvironmentRuntime, FrameworkRuntime, RunRecord
from dlbench.record.schema_v1 import RunRecordV1, upgrade

RUN_FILE = "run.json"
CSV_FILE = "results.csv"
LOCK_FILE = ".lock"
RUN_FILE_LIMIT = 1024 * 2**20  # far above any real sweep's raw samples; stops a runaway read
READABLE_VERSIONS = (1, SCHEMA_VERSION)

__all__ = ["CSV_COLUMNS", "SCHEMA_VERSION", "RunRecord", "RunStore", "atomic_write", "load_run", "read_record"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
    for i, result in enumerate(record.results):
        if result.status == OK and not result.samples_ms:
            raise StoreError(f"{source} is a damaged run record: results[{i}].samples_ms: "
                             "a case with status ok has no samples")
    return record


def resolve_run_file(path: Path) -> Path:
    """Accept a run directory or its run.json."""
    return path / RUN_FILE if path.is_dir() else path


def load_run(path: Path | str) -> RunRecord:
    """Read and validate a stored run (a directory holding run.json, or the file itself)."""
    run_file = resolve_run_file(Path(path))
    if not run_file.exists():
        raise StoreError(f"no dlbench run at {path} (expected {run_file})")
    text = read_regular_text(run_file, RUN_FILE_LIMIT, "run record", StoreError)  # a FIFO must not hang
    return read_record(text.encode("utf-8"), str(run_file))


class RunStore:
    """An open, locked run directory. Every :meth:`add` rewrites both files atomically."""

    def __init__(self, directory: Path, record: RunRecord) -> None:
        self.directory = directory
        self.record = record
        self._lock_handle: io.TextIOWrapper | None = None

    @classmethod
    def open(cls, directory: Path, record: RunRecord | None = None, *, resume: bool = False) -> RunStore:
        """Create (or, with ``resume``, reopen) a run directory and take its lock.

        A fresh run (``record`` given) refuses a directory that already holds a run, so nothing measured is
        overwritten; a resumed run reads the stored record (validated, upgraded to the current version).
        A run that cannot start (the lock cannot be taken, the disk is full) leaves nothing behind: the lock
        file and the directory are removed again if this call created them.
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
        store = cls(directory, record)  # type: ignore[arg-type]  # a resumed run's record is read below
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
            elif (directory / CSV_FILE).exists():
                raise StoreError(f"{directory} holds a {CSV_FILE} that no run there wrote; it is never "
                                 "overwritten: choose another --output")
            started = not resume
            store.flush()
        except BaseException:
            store.close()
            store._remove_leftovers(created_lock, started, created_directory)
            raise
        return store

    def _remove_leftovers(self, lock: bool, files: bool, directory: bool) -> None:
        """Undo what a failed start created: its lock file, the first (empty) run files of a fresh run, and
        the directory if nothing else is in it."""
        try:
            for name, created in ((LOCK_FILE, lock), (RUN_FILE, files), (CSV_FILE, files)):
                if created:
                    (self.directory / name).unlink(missing_ok=True)
            if directory:
                self.directory.rmdir()
        except OSError:
            pass  # not empty or not ours to remove: leave it

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
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def find(self, environment: str, key: str) -> CaseResult | None:
        return next((r for r in self.record.results
                     if r.environment == environment and r.case.key == key), None)

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

    def add(self, result: CaseResult) -> None:
        """Store a finished case (replacing an earlier result of the same case) and persist at once.

        A result that would make the record invalid (NaN from a framework's counter, say) is stored as
        ``failed`` with the reason, so that the file stays valid JSON and readable by every command."""
        try:
            msgspec.convert(msgspec.to_builtins(result), CaseResult)
        except msgspec.ValidationError as exc:
            result = CaseResult(case=result.case, status=FAILED, error=f"invalid result: {validation_message(exc)}",
                                started_at=result.started_at, environment=result.environment)
        self.record.results = [r for r in self.record.results
                               if (r.environment, r.case.key) != (result.environment, result.case.key)]
        self.record.results.append(result)
        self.flush()

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
        env = self.record.environment
        if environment:
            section = env.environments.get(environment, EnvironmentRuntime())
            section = EnvironmentRuntime(workers={**section.workers, worker.label: runtime})
            self.record.environment = msgspec.structs.replace(
                env, environments={**env.environments, environment: section})
        else:
            self.record.environment = msgspec.structs.replace(env, workers={**env.workers, worker.label: runtime})
        self.flush()

    def add_control(self, reading: ControlReading) -> None:
        """Keep one round's control reading (see :mod:`dlbench.runner.drift`)."""
        env = self.record.environment
        self.record.environment = msgspec.structs.replace(env, control=(*env.control, reading))
        self.flush()

    def finish(self, status: str) -> None:
        self.record.status = status
        self.record.finished = now_iso()
        self.flush()

    def flush(self) -> None:
        try:
            atomic_write(self.directory / RUN_FILE, self.record.to_json())
            atomic_write(
                self.directory / CSV_FILE,
                csv_text(self.record),
            )
        except OSError as exc:
            raise StoreError(f"cannot write results into {self.directory}: {exc.strerror}") from None
