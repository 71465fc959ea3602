"""The journal of a running run (``run.jsonl`` beside ``run.json``): what changed since the last snapshot, one
line at a time, so that storing a finished case costs the same at the 10,000th case as at the first.

``run.json`` is a snapshot (a complete :class:`~dlbench.record.schema.RunRecord`) that says how many journal
entries it already holds (``journal_seq``). ``run.jsonl`` starts with a header naming the run and the snapshot
it continues, then holds one :data:`Entry` per line, numbered on from there: a stored result, a worker's
runtime, a drift-control reading, a new environment, a fleet node's news. The record is the snapshot with the
journal's later entries applied in order (:func:`apply`); the writer applies each entry to its own record
through the same function, after the entry has gone through JSON and back, so the record a reader rebuilds
is the writer's record, field for field.

Why lines and numbers: a line is appended with one ``write`` and synced, so a ``kill -9`` leaves whole lines
plus at most one incomplete last line, which is dropped with a warning (the case it held was not yet
reported as stored; ``--resume`` measures it again). The sequence numbers make compaction safe to interrupt:
a snapshot written before the journal was emptied already holds that journal's entries, and a reader skips
them instead of applying them twice (which would repeat a control reading or a fleet group).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from dlbench.cases.spec import Name
from dlbench.errors import StoreError, validation_message
from dlbench.record.results import CaseResult
from dlbench.record.schema import ControlReading, Environment, EnvironmentRuntime, FrameworkRuntime, RunRecord

Seq = Annotated[int, msgspec.Meta(ge=0)]


class JournalWarning(UserWarning):
    """A journal's incomplete last line was dropped: the run was killed (or is still writing) mid-line."""


class Header(msgspec.Struct, tag_field="kind", tag="journal", kw_only=True):
    """The first line: whose journal this is, and the number of the snapshot's last entry it continues."""

    run_id: Name
    seq: Seq


class Entry(msgspec.Struct, tag_field="kind", kw_only=True, omit_defaults=True):
    seq: Seq


class ResultEntry(Entry, tag="result"):
    """A case's result, replacing an earlier result of the same case and environment (rounds, resume)."""

    result: CaseResult


class WorkerEntry(Entry, tag="worker"):
    """What a worker's framework reported, under the worker's label (in a ``--python`` environment's section
    when ``environment`` is set)."""

    label: str
    runtime: FrameworkRuntime
    environment: str = ""


class ControlEntry(Entry, tag="control"):
    """One round's drift-control reading."""

    reading: ControlReading


class EnvironmentEntry(Entry, tag="environment"):
    """A new environment as a whole (the calibration's peaks): rare, so whole is simplest."""

    environment: Environment


class NodeEntry(Entry, tag="node"):
    """News of one fleet node (``environment.nodes[label]``): fields of its entry, a worker's runtime, a group
    that started there, or how far the node's last group has got (``finished``, extended by each result)."""

    label: str
    fields: dict[str, Any] = {}
    workers: dict[str, Any] = {}
    group: dict[str, Any] | None = None
    finished: float | str | None = None  # as the node's agent stamps it (epoch seconds)


Line = Header | ResultEntry | WorkerEntry | ControlEntry | EnvironmentEntry | NodeEntry
AnyEntry = ResultEntry | WorkerEntry | ControlEntry | EnvironmentEntry | NodeEntry

ENCODER = msgspec.json.Encoder()
DECODER = msgspec.json.Decoder(Line)


def encode(line: Header | AnyEntry) -> bytes:
    """One journal line, newline included (msgspec writes a non-finite float as ``null``, never as a bare
    ``NaN`` token; a typed field that must be a number then fails :func:`decode`, which the writer calls)."""
    return ENCODER.encode(line) + b"\n"


def decode(line: bytes) -> Header | AnyEntry:
    """A line back, validated like a stored record (raises msgspec.ValidationError or DecodeError)."""
    return DECODER.decode(line)


@dataclass
class Results:
    """A record's results with an index by (environment, case key): finding and replacing a result in
    constant time, which a list scan per case would make quadratic over a sweep."""

    record: RunRecord
    index: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {(r.environment, r.case.key): i for i, r in enumerate(self.record.results)}
        # A node entry changes environment.nodes in place (constant time per fleet result), so the record
        # gets nodes of its own first: a default Environment() is one object shared by every record.
        env = self.record.environment
        self.record.environment = msgspec.structs.replace(env, nodes=copy.deepcopy(env.nodes))

    def find(self, environment: str, key: str) -> CaseResult | None:
        position = self.index.get((environment, key))
        return None if position is None else self.record.results[position]

    def put(self, result: CaseResult) -> None:
        where = (result.environment, result.case.key)
        position = self.index.get(where)
        if position is None:
            self.index[where] = len(self.record.results)
            self.record.results.append(result)
        else:
            self.record.results[position] = result


def apply(results: Results, entry: AnyEntry) -> None:
    """Change the record as ``entry`` says: the one definition of what an entry means, for writer and reader."""
    record = results.record
    env = record.environment
    if isinstance(entry, ResultEntry):
        results.put(entry.result)
    elif isinstance(entry, WorkerEntry):
        if entry.environment:
            section = env.environments.get(entry.environment, EnvironmentRuntime())
            section = EnvironmentRuntime(workers={**section.workers, entry.label: entry.runtime})
            record.environment = msgspec.structs.replace(
                env, environments={**env.environments, entry.environment: section})
        else:
            record.environment = msgspec.structs.replace(env, workers={**env.workers, entry.label: entry.runtime})
    elif isinstance(entry, ControlEntry):
        record.environment = msgspec.structs.replace(env, control=(*env.control, entry.reading))
    elif isinstance(entry, EnvironmentEntry):
        record.environment = entry.environment
    else:  # NodeEntry: the node's entry is the store's own plain JSON object, changed in place (constant time)
        node = env.nodes.setdefault(entry.label, {})
        node.update(entry.fields)
        groups = node.setdefault("groups", [])
        if entry.workers:
            node.setdefault("workers", {}).update(entry.workers)
        if entry.group is not None:
            groups.append(entry.group)
        if entry.finished is not None and groups:
            groups[-1]["finished"] = entry.finished


@dataclass(frozen=True)
class Replay:
    """What reading a journal found: the entries after the snapshot, and the last number seen."""

    entries: list[AnyEntry]
    last_seq: int
    dropped_tail: bool


def lines(data: bytes) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line, whether it ended with a newline) for every non-empty line."""
    start, number = 0, 0
    while start < len(data):
        end = data.find(b"\n", start)
        complete = end >= 0
        stop = end if complete else len(data)
        number += 1
        if stop > start:
            yield number, data[start:stop], complete
        start = stop + 1


def read_journal(data: bytes, source: str, record: RunRecord) -> Replay:
    """The entries of a journal that come after ``record`` (its snapshot), checked: the header names the same
    run, the numbers run on without a gap. An incomplete or undecodable *last* line is what a kill mid-write
    leaves: it is dropped with a :class:`JournalWarning`. Anything else is damage: one StoreError naming the
    file, the line and the field."""
    snapshot_seq = record.journal_seq
    found: list[AnyEntry] = []
    header: Header | None = None
    expected = None
    parsed = list(lines(data))
    dropped = False
    for position, (number, text, complete) in enumerate(parsed):
        last = position == len(parsed) - 1
        try:
            if not complete:
                raise msgspec.DecodeError("incomplete line")
            line = decode(text)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            if last and header is not None:
                warnings.warn(f"{source}: dropped its incomplete last line {number} (the run was killed, or is "
                              "still writing, mid-line); a case it held is measured again on --resume",
                              JournalWarning, stacklevel=3)
                dropped = True
                break
            reason = validation_message(exc) if isinstance(exc, msgspec.ValidationError) else str(exc)
            raise StoreError(f"{source} is a damaged run journal: line {number}: {reason}") from None
        if header is None:
            if not isinstance(line, Header):
                raise StoreError(f"{source} is a damaged run journal: line {number} is not its header")
            if line.run_id != record.run_id:
                raise StoreError(f"{source} is the journal of run {line.run_id!r}, not of {record.run_id!r}")
            if line.seq > snapshot_seq:
                raise StoreError(f"{source} continues a later snapshot than its run.json (entries "
                                 f"{snapshot_seq + 1} to {line.seq} are missing)")
            header, expected = line, line.seq + 1
            continue
        if isinstance(line, Header):
            raise StoreError(f"{source} is a damaged run journal: line {number} is a second header")
        if line.seq != expected:
            raise StoreError(f"{source} is a damaged run journal: line {number} is entry {line.seq}, "
                             f"expected {expected}")
        expected = line.seq + 1
        if line.seq > snapshot_seq:
            found.append(line)
    last_seq = max(snapshot_seq, (expected - 1) if expected is not None else 0)
    return Replay(found, last_seq, dropped)
