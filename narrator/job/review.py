"""The editor's decisions, in a review file beside the job (``<job>.review.yaml``): per take its status, a note,
a text override, its own instructions, how many times it was redone and which of its takes the book uses; and
lexicon additions for the whole book. Stable order, so teams can commit and diff it next to the job.

Every decision is keyed by the take's id and carries a hash of the text the take was made for: when the book's
text changes under it, the decision is stale (shown, never silently applied). Only ``review`` and ``redo`` write
the file, atomically, under a lock (two tabs, or a page and a ``redo``, do not lose each other's writes); ``run``
only reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core import errors
from ..core.audio import atomic_write
from ..text.takes import Take

Status = Literal["unheard", "approved", "rejected"]


class TakeDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str  # hash of the text the take was made for (text_hash)
    status: Status = "unheard"
    note: str | None = None
    text: str | None = None  # what to say instead of the source text (the source stays untouched)
    instructions: str | None = None  # this take's own, for voices that take them
    redone: int = 0  # how many new takes were asked for: take n is cached under its own key
    chosen: int | None = None  # which take the book uses (0: the first); None: the newest
    chapter: int | None = None  # where the take was (chapter from 1, its first paragraph's block): when its text
    block: int | None = None  # changes, the take there now inherits the decision as stale


class ReviewFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lexicon: dict[str, str] = Field(default_factory=dict)
    takes: dict[str, TakeDecision] = Field(default_factory=dict)

    def decision(self, take_id: str, text: str) -> TakeDecision | None:
        """The decision for a take as it is now; None when there is none, or it was made for another text."""
        found = self.takes.get(take_id)
        return found if found is not None and found.source == text_hash(text) else None


def decision_for(take: Take) -> TakeDecision:
    """A fresh decision for a take as it is now."""
    return TakeDecision(source=text_hash(take.text), chapter=take.chapter + 1, block=take.chunks[0].block)


def current_decision(review: ReviewFile, take: Take) -> TakeDecision:
    """The decision the review file holds for the take as it is now, or a fresh one (none yet, or one made for
    an earlier text of it)."""
    found = review.takes.get(take.id)
    return found if found is not None and found.source == text_hash(take.text) else decision_for(take)


def stale_decisions(review: ReviewFile, takes: Sequence[Take]) -> dict[str, TakeDecision]:
    """Take id -> the decision made for the take that stood in its place before its text changed (a take's id
    follows its text, so an edited paragraph is a new take): shown as stale, never applied."""
    ids = {t.id for t in takes}
    orphans = {(d.chapter, d.block): d for i, d in review.takes.items() if i not in ids and d.chapter is not None}
    found = {}
    for take in takes:
        inherited = orphans.get((take.chapter + 1, take.chunks[0].block))
        if inherited is not None and take.id not in review.takes:
            found[take.id] = inherited
    return found


def review_state(review: ReviewFile, take: Take, stale: Mapping[str, TakeDecision]) -> tuple[str | None, bool]:
    """What the review file says of a take: its status (``stale`` when made for another text; None when it says
    nothing), and whether its text is overridden."""
    found = review.takes.get(take.id)
    if take.id in stale:
        return "stale", False
    if found is None:
        return None, False
    if found.source != text_hash(take.text):
        return "stale", False
    return found.status, bool(found.text)


def review_counts(review: ReviewFile, takes: Sequence[Take]) -> dict[str, int]:
    """Every take of the book by its review state (a take the file says nothing of is ``unheard``), and how many
    have their text overridden."""
    counts: dict[str, int] = {}
    stale = stale_decisions(review, takes)
    for take in takes:
        state, overridden = review_state(review, take, stale)
        for name in (state or "unheard", "overridden" if overridden else None):
            if name is not None:
                counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def review_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.stem + ".review.yaml")


def load_review(job_path: Path) -> ReviewFile:
    """The review file of a job; an empty one when there is none. A damaged file is the user's to fix: one line."""
    path = review_path(job_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return ReviewFile()
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise errors.JobError([f"{path}: cannot be read: {str(exc).splitlines()[0]}"]) from None
    try:
        return ReviewFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise errors.JobError([f"{path}: {where}: {first['msg']}"]) from None


_locks: dict[Path, threading.Lock] = {}


def _lock_path(path: Path) -> Path:
    """The review file's lock, in a ``.narrator/`` folder beside it that git ignores (its own ``.gitignore``):
    teams commit the review file, and a lock beside it showed in every ``git status``."""
    folder = path.parent / ".narrator"
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        atomic_write(ignore, b"# narrator's working files: never committed\n*\n")
    return folder / f"{path.name}.lock"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time: threads of this process, and other processes (an OS file lock)."""
    lock = _locks.setdefault(path, threading.Lock())
    with lock, open(_lock_path(path), "a+") as held:
        try:
            import fcntl

            fcntl.flock(held, fcntl.LOCK_EX)
        except ImportError:  # no flock (Windows): the thread lock alone
            pass
        yield


def update_review(job_path: Path, change: Callable[[ReviewFile], None]) -> ReviewFile:
    """Read the file afresh, apply ``change``, write it back atomically: concurrent writers never lose an edit."""
    path = review_path(job_path)
    with _locked(path):
        review = load_review(job_path)
        change(review)
        data = review.model_dump(exclude_defaults=True)
        data["takes"] = {k: data["takes"][k] for k in sorted(data.get("takes", {}))}
        data["lexicon"] = dict(sorted(review.lexicon.items()))
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        atomic_write(path, text.encode("utf-8"))
    return review
