"""Versioned run records on disk: ``run.json`` (everything, raw samples included) and ``results.csv``.

Both files are rewritten atomically (temporary file + ``os.replace``) after every finished case, so a
kill at any moment leaves readable files holding every case measured so far. A lock file stops two runs
from writing into one directory at once. ``load_run`` validates the schema version, so ``report`` and
``compare`` refuse a corrupt or unknown file with a clear message instead of a traceback.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dlbench.errors import StoreError
from dlbench.files import atomic_write, read_regular_text
from dlbench.results import INTERRUPTED, OK, CaseResult
from dlbench.spec import WorkerKey
from dlbench.workloads.definitions import pass_flops

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
CSV_FILE = "results.csv"
LOCK_FILE = ".lock"
RUN_FILE_LIMIT = 1024 * 2**20  # far above any real sweep's raw samples; stops a runaway read

CSV_COLUMNS = (
    "run_id", "environment", "key", "workload", "phase", "framework", "framework_version", "variant", "device",
    "threads",
    "batch_size", "pass", "precision", "status", "median_ms", "iqr_ms", "ci_low_ms", "ci_high_ms", "mean_ms",
    "std_ms", "min_ms", "n_samples", "rounds", "round_cv", "iterations_per_sample", "noisy", "first_call_ms",
    "samples_per_s",
    "params", "macs", "flops", "gflops_per_s", "framework_flops", "peak_rss_mb", "rss_rise_mb",
    "framework_peak_mb", "device_peak_mb", "threads_effective", "affinity", "cpu_per_wall", "host", "node_id",
    "retries", "started_at", "duration_s", "error",
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 3)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def result_row(run_id: str, result: CaseResult, framework_version: str = "") -> dict[str, Any]:
    """One CSV row: the case's axes, its status and statistics derived from its raw samples."""
    case = result.case
    row: dict[str, Any] = {
        "run_id": run_id, "environment": result.environment, "key": case.key, "workload": case.workload,
        "phase": case.phase,
        "framework": case.framework, "framework_version": framework_version, "variant": case.variant,
        "device": case.device, "threads": case.threads, "batch_size": case.batch_size, "pass": case.pass_,
        "precision": case.precision, "status": result.status, "error": result.error,
        "first_call_ms": _round(result.first_call_ms, 3), "params": result.params, "macs": result.macs,
        "iterations_per_sample": result.iterations_per_sample or None,
        "framework_flops": result.framework_flops,
        "peak_rss_mb": _mb(result.memory.peak_rss), "rss_rise_mb": _mb(result.memory.rise),
        "framework_peak_mb": _mb(result.memory.framework_peak), "device_peak_mb": _mb(result.memory.device_peak),
        "threads_effective": result.threads_effective,
        "affinity": " ".join(map(str, result.affinity)),
        "cpu_per_wall": _round(result.cpu_per_wall, 3), "host": result.host, "node_id": result.node_id,
        "retries": result.retries, "started_at": result.started_at,
        "duration_s": _round(result.duration_s, 3),
    }
    summary = result.summary()
    if summary is not None:
        flops = pass_flops(case.workload, case.phase, case.pass_, case.batch_size)
        row.update(
            median_ms=_round(summary.median), iqr_ms=_round(summary.iqr), ci_low_ms=_round(summary.ci_low),
            ci_high_ms=_round(summary.ci_high), mean_ms=_round(summary.mean), std_ms=_round(summary.std),
            min_ms=_round(summary.min), n_samples=summary.n, noisy=summary.noisy, rounds=summary.rounds,
            round_cv=_round(summary.round_cv),
            samples_per_s=_round(case.batch_size / (summary.median / 1e3), 2),
            flops=flops, gflops_per_s=_round(flops / (summary.median / 1e3) / 1e9, 3),
        )
    return {col: ("" if row.get(col) is None else row.get(col)) for col in CSV_COLUMNS}


def csv_text(record: RunRecord) -> str:
    """``results.csv``: one row per case (per environment in an A/B run), with that environment's versions."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    versions = {name: record.framework_versions(name) for name in {"", *record.environment_names()}}
    for result in record.results:
        version = versions.get(result.environment, {}).get(result.case.framework, "")
        writer.writerow(result_row(record.run_id, result, version))
    return out.getvalue()


@dataclass
class RunRecord:
    """The versioned content of ``run.json``."""

    run_id: str
    created: str
    environment: dict[str, Any]
    suite: dict[str, Any]
    config: dict[str, Any]
    results: list[CaseResult] = field(default_factory=list)
    finished: str = ""
    status: str = "running"  # running | complete | interrupted
    schema_version: int = SCHEMA_VERSION

    def environment_names(self) -> list[str]:
        """The ``--python`` environments of an A/B run, in the order given ([] for an ordinary run)."""
        return [str(e["name"]) for e in self.config.get("environments", []) if isinstance(e, dict)]

    def framework_versions(self, environment: str = "") -> dict[str, str]:
        section = self.environment
        if environment:
            found = self.environment.get("environments", {}).get(environment, {})
            section = found if isinstance(found, dict) else {}
        frameworks = section.get("frameworks", {})
        if not isinstance(frameworks, dict):
            return {}
        return {str(name): str(info.get("version", "")) for name, info in frameworks.items()
                if isinstance(info, dict)}

    def to_json(self) -> str:
        data = {
            "schema_version": self.schema_version, "run_id": self.run_id, "created": self.created,
            "finished": self.finished, "status": self.status, "environment": self.environment,
            "suite": self.suite, "config": self.config, "results": [r.to_dict() for r in self.results],
        }
        return json.dumps(data, indent=1, sort_keys=False, default=str)

    @classmethod
    def from_json(cls, text: str, source: str = "run.json") -> RunRecord:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StoreError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict) or "schema_version" not in data:
            raise StoreError(f"{source} is not a dlbench run record (no schema_version)")
        version = data["schema_version"]
        if version != SCHEMA_VERSION:
            raise StoreError(f"{source} has schema version {version!r}; this dlbench reads {SCHEMA_VERSION}")
        try:
            return cls(
                run_id=str(data["run_id"]), created=str(data["created"]), environment=dict(data["environment"]),
                suite=dict(data["suite"]), config=dict(data["config"]),
                results=[CaseResult.from_dict(r) for r in data["results"]],
                finished=str(data.get("finished", "")), status=str(data.get("status", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{source} is a damaged run record ({type(exc).__name__}: {exc})") from None


def resolve_run_file(path: Path) -> Path:
    """Accept a run directory or its run.json."""
    return path / RUN_FILE if path.is_dir() else path


def load_run(path: Path | str) -> RunRecord:
    """Read and validate a stored run (a directory holding run.json, or the file itself)."""
    run_file = resolve_run_file(Path(path))
    if not run_file.exists():
        raise StoreError(f"no dlbench run at {path} (expected {run_file})")
    text = read_regular_text(run_file, RUN_FILE_LIMIT, "run record", StoreError)  # a FIFO must not hang
    return RunRecord.from_json(text, str(run_file))


class RunStore:
    """An open, locked run directory. Every :meth:`add` rewrites both files atomically."""

    def __init__(self, directory: Path, record: RunRecord) -> None:
        self.directory = directory
        self.record = record
        self._lock_handle: io.TextIOWrapper | None = None

    @classmethod
    def open(cls, directory: Path, record: RunRecord, *, resume: bool = False) -> RunStore:
        """Create (or, with ``resume``, reopen) a run directory and take its lock.

        A fresh run refuses a directory that already holds a run, so nothing measured is overwritten.
        A run that cannot start (the lock cannot be taken, the disk is full) leaves nothing behind: the lock
        file and the directory are removed again if this call created them.
        """
        created_directory = not directory.exists()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create output directory {directory}: {exc.strerror}") from None
        if not os.access(directory, os.W_OK):
            raise StoreError(f"output directory {directory} is not writable")
        store = cls(directory, record)
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
        """Store a finished case (replacing an earlier result of the same case) and persist at once."""
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
        """Keep what a worker's framework reported: per worker (threads differ) and, once, per framework;
        for a ``--python`` environment under ``environments[name]``."""
        target = self.record.environment
        if environment:
            target = target.setdefault("environments", {}).setdefault(environment, {})
        target.setdefault("workers", {})[worker.label] = info
        target.setdefault("frameworks", {}).setdefault(worker.framework, info)
        self.flush()

    def add_control(self, entry: dict[str, Any]) -> None:
        """Keep one round's control reading (see :mod:`dlbench.control`)."""
        self.record.environment.setdefault("control", []).append(entry)
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
