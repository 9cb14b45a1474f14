"""Which chapters have every take stored: the back end builds a chapter as soon as its takes are in, while later
chapters are still being synthesized (for an API run the CPU is idle while it waits on the network).

Synthesis reports each take it stores (``stored``, from the event loop's thread); the build waits on a chapter
from its own thread (``wait``). When synthesis is over, ``close`` says no more takes will come: a chapter still
missing one then raises ``NotReady`` instead of waiting for ever.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence


class NotReady(Exception):
    """A chapter's takes will not all be stored in this run (a take failed, or the run stopped)."""

    def __init__(self, chapter: int):
        super().__init__(f"chapter {chapter + 1} has takes that were not made")
        self.chapter = chapter


class ChapterGate:
    """``waits_for``: each chapter's takes (cache keys) not yet stored, in reading order."""

    def __init__(self, waits_for: Sequence[frozenset[str]]):
        self._missing = [set(keys) for keys in waits_for]
        self._chapters_of: dict[str, list[int]] = defaultdict(list)
        for index, keys in enumerate(waits_for):
            for key in keys:
                self._chapters_of[key].append(index)
        self._changed = threading.Condition()
        self._closed = False

    @property
    def all_ready(self) -> bool:
        with self._changed:
            return not any(self._missing)

    def stored(self, key: str) -> None:
        with self._changed:
            for index in self._chapters_of.pop(key, []):
                self._missing[index].discard(key)
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait(self, index: int) -> None:
        """Return once every take of chapter ``index`` is stored; raise NotReady if that will not happen."""
        with self._changed:
            while self._missing[index] and not self._closed:
                self._changed.wait()
            if self._missing[index]:
                raise NotReady(index)
