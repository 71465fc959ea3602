"""Taking turns: several children share the same cores, and only one of them runs at a time.

Why: two measurements compared with each other are fair only if they see the same machine. A virtual
machine's speed drifts by tens of percent within a second (neighbours on the host, frequency), so two
worker processes measured one after the other, even back to back, see different machines. Children that
take turns sample by sample see the same drift, and the ratio of their timings no longer carries it.

How: the parent holds a :class:`Turns` that gives the turn to one member at a time by writing one byte into
that child's *baton* pipe (:class:`~dlbench.process.child.Child` creates it when its spec asks for one). The
child waits for the byte before doing any work (:meth:`Baton.wait`), and at each point where it may be
interrupted (between two samples) it sends a :class:`Yield` message on its channel and waits again
(:meth:`Baton.pass_on`). The parent, on that message, gives the turn to the next member, round robin. A
member that ends leaves the ring; if it held the turn, the next member gets it. Everything a child does
between two yields (importing, building, warming up, the samples themselves) is done alone on the cores.

Stopping together: a yield names what the child is working on (its *topic*, e.g. a case) and whether it
would be ready to stop working on it (its sampling rule is satisfied). The byte that gives the turn back
says "stop" only when every member on the same topic is ready, so that all of them take the same number of
samples, alternating one by one, instead of one side sampling on alone after the other stopped. A member
on another topic (behind, ahead, or whose case failed) holds nobody back.

The parent arbitrates, rather than the children passing the baton to each other directly, so that a child
that dies or hangs costs the others nothing but the time until its deadline: the ring never breaks.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Protocol

from dlbench.process.messages import Channel, Message

BATON_ENV = "DLBENCH_BATON_FD"  # the file descriptor of a child's baton pipe (read end)


CONTINUE, STOP = b"c", b"s"  # what the byte that gives the turn says about the current topic


@dataclass(frozen=True)
class Yield(Message):
    """The child stops here until it is given the turn again; it works on ``topic`` and would be ready to
    stop working on it (``ready``)."""

    kind = "yield"
    topic: str = ""
    ready: bool = False


class Member(Protocol):
    """What :class:`Turns` needs of a child: a way to hand it the turn (``signal``: :data:`CONTINUE` or
    :data:`STOP`)."""

    def give_turn(self, signal: bytes = CONTINUE) -> None: ...


class Turns:
    """The parent's arbiter: which member of the ring may run now. Thread-safe (each member is supervised
    from its own thread)."""

    def __init__(self, expected: int = 1) -> None:
        self._lock = threading.Lock()
        self._ring: list[Member] = []
        self._ranks: dict[int, int] = {}  # id(member) -> its place in the ring
        self._holder: Member | None = None
        self._waiting_for = expected  # members still to join before the first turn is given
        self._state: dict[int, tuple[str, bool]] = {}  # id(member) -> (topic, ready) of its last yield
        self.given = 0  # how many turns were handed out (a test can see that the members alternated)

    @property
    def holder(self) -> Member | None:
        return self._holder

    def members(self) -> list[Member]:
        """The members in the ring now, in rank order (a copy)."""
        with self._lock:
            return list(self._ring)

    def join(self, member: Member, rank: int = 0) -> None:
        """Add ``member`` to the ring at place ``rank`` (a member that replaces another takes its rank).

        The first turn is given once the ``expected`` members have joined, to the lowest rank,
        so that none of them runs alone while the others are still starting; after that, a member that
        joins runs at once if no one holds the turn."""
        with self._lock:
            self._ranks[id(member)] = rank
            self._ring.append(member)
            self._ring.sort(key=lambda m: self._ranks[id(m)])
            self._waiting_for -= 1
            if self._holder is None and self._waiting_for <= 0:
                self._give(self._ring[0])

    def yielded(self, member: Member, topic: str = "", ready: bool = False) -> None:
        """``member`` stopped at a yield point, working on ``topic`` and ``ready`` to stop working on it:
        the next member in the ring runs (itself, when alone)."""
        with self._lock:
            self._state[id(member)] = (topic, ready)
            if member is self._holder:
                self._give(self._after(member))

    def _signal(self, member: Member) -> bytes:
        """STOP when ``member`` and every other member on its topic are ready to stop; else CONTINUE."""
        topic, ready = self._state.get(id(member), ("", False))
        if not ready:
            return CONTINUE
        together = [self._state.get(id(other)) for other in self._ring if other is not member]
        return STOP if all(state[1] for state in together if state is not None and state[0] == topic) else CONTINUE

    def leave(self, member: Member) -> None:
        """``member`` ended (any way): it leaves the ring, and the turn moves on if it held it."""
        with self._lock:
            if member not in self._ring:
                return
            following = self._after(member)
            self._ring.remove(member)
            self._state.pop(id(member), None)
            self._ranks.pop(id(member), None)
            if member is self._holder:
                self._holder = None
                if self._ring:
                    self._give(following)

    def _after(self, member: Member) -> Member:
        index = self._ring.index(member)
        return self._ring[(index + 1) % len(self._ring)]

    def _give(self, member: Member) -> None:
        self._holder = member
        self.given += 1
        member.give_turn(self._signal(member))


class Baton:
    """The child's side: wait for the turn, yield it at a point where the work may be interrupted."""

    def __init__(self, fd: int, channel: Channel) -> None:
        self.fd = fd
        self.channel = channel

    @classmethod
    def from_environment(cls, channel: Channel) -> Baton | None:
        """The baton this child was started with, or None when it runs alone."""
        value = os.environ.get(BATON_ENV, "")
        return cls(int(value), channel) if value else None

    def wait(self) -> bool:
        """Block until the parent gives this child the turn; True if it also says to stop the current topic.
        A parent that is gone ends the child: there is nobody left to report to."""
        signal = os.read(self.fd, 1)
        if not signal:
            os._exit(1)
        return signal == STOP

    def pass_on(self, topic: str = "", ready: bool = False) -> bool:
        """Let the other members run, and come back when it is this child's turn again. ``ready``: this
        child could stop working on ``topic`` now. Returns whether to stop (all members on the topic are
        ready)."""
        self.channel.send(Yield(topic, ready))
        return self.wait()
