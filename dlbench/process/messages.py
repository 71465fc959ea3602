"""Typed messages from a child to its parent: one JSON object per line on a private pipe.

The pipe is a dedicated file descriptor, not stdout, because frameworks print banners and warnings on their
own; a child's stdout and stderr are captured separately and only shown in error texts. Each message type is
a frozen dataclass with a unique ``kind``; a line names its kind and carries the fields, and the parent
decodes it back into the same type (a :class:`Codec` knows which types a job may send), so neither side ever
handles an ad-hoc dict.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar, Self


class Message:
    """Base of every message type. Subclasses are frozen dataclasses whose fields are JSON values; a type
    with richer fields overrides :meth:`to_wire` and :meth:`from_wire`."""

    kind: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


def encode(message: Message) -> bytes:
    """One line: ``{"kind": ..., "body": {...}}`` and a newline."""
    return (json.dumps({"kind": message.kind, "body": message.to_wire()}, default=str) + "\n").encode()


class Codec:
    """Decodes the lines of one job's channel into the message types that job may send."""

    def __init__(self, *types: type[Message]) -> None:
        self.types = {t.kind: t for t in types}
        if len(self.types) != len(types):
            raise ValueError("two message types share a kind")

    def decode(self, line: bytes) -> Message | None:
        """The message on ``line``; None for a line that is not one of ours (never raises on input)."""
        try:
            data = json.loads(line)
            kind, body = data["kind"], data["body"]
            return self.types[kind].from_wire(body)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class Channel:
    """The child's end of the pipe: each :meth:`send` writes one whole line."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: Message) -> None:
        data = encode(message)
        while data:  # a pipe may take a long line in pieces
            data = data[os.write(self.fd, data):]
