"""What the editor's page changes, each in one write of the review file (server.py serves them): decisions on
takes and their undo, a chapter's instructions, a lexicon entry, a take made again. Each returns what the page
shows next (with an HTTP status where it can fail)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from ..job.review import ReviewFile, Status, TakeDecision, current_decision, update_review
from ..text.takes import Take
from .desk import Desk, position_of
from .payloads import PageChapter, PageTake
from .redo import redo


def decide(desk: Desk, changes: dict[str, dict[str, Any]]) -> list[PageTake]:
    """Apply each take's change in one write of the review file; the takes as the page shows them now."""
    takes = {}
    for take_id, body in changes.items():
        take = desk.take(take_id)
        if take is None:
            raise ValueError(f"no such take: {take_id}")
        status = body.get("status")
        if status is not None and status not in Status.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"status must be one of {', '.join(Status.__args__)}")  # type: ignore[attr-defined]
        if body.get("instructions") and not desk.voice().instructions:
            raise ValueError("this book's voice does not take instructions")
        takes[take_id] = take

    def change(review: ReviewFile) -> None:
        for take_id, body in changes.items():
            take = takes[take_id]
            said = ("status", "note", "text", "instructions")
            update: dict[str, Any] = {
                k: (str(body[k]).strip() or None) if body[k] is not None else None for k in said if k in body
            }
            if "chosen" in body:
                update["chosen"] = int(body["chosen"])
            review.takes[take.id] = current_decision(review, take).model_copy(update=update)

    update_review(desk.job.path, change)
    desk.changed()
    return shown(desk, takes.values())


def decide_many(desk: Desk, changes: Any) -> dict[str, Any]:
    """One change for many takes (approve all shown), undoable: the takes now, and their decisions before."""
    if not isinstance(changes, dict) or not all(isinstance(v, dict) for v in changes.values()):
        raise ValueError("takes: a mapping of take id to its change was expected")
    before = {i: (d.model_dump() if (d := desk.script.review.takes.get(i)) else None) for i in changes}
    return {"takes": decide(desk, changes), "before": before}


def restore(desk: Desk, before: Any) -> list[PageTake]:
    """Put decisions back as ``/api/decisions`` found them: undo."""
    if not isinstance(before, dict):
        raise ValueError("takes: a mapping of take id to its decision (or null) was expected")
    takes = {i: t for i in before if (t := desk.take(i)) is not None}
    try:
        restored = {i: None if d is None else TakeDecision.model_validate(d) for i, d in before.items()}
    except ValidationError as exc:
        raise ValueError(f"not a decision: {exc.errors()[0]['msg']}") from None

    def change(review: ReviewFile) -> None:
        for take_id, decision in restored.items():
            if decision is None:
                review.takes.pop(take_id, None)
            else:
                review.takes[take_id] = decision

    update_review(desk.job.path, change)
    desk.changed()
    return shown(desk, takes.values())


def shown(desk: Desk, takes: Iterable[Take]) -> list[PageTake]:
    """The takes as the page shows them now (each chapter's made once: a batch may hold hundreds)."""
    chapters: dict[int, PageChapter] = {}
    rows = []
    for take in takes:
        if take.chapter not in chapters:
            chapters[take.chapter] = desk.chapter(take.chapter)
        rows.append(chapters[take.chapter].takes[position_of(desk.script, take)])
    return rows


def instruct_chapter(desk: Desk, index: int, body: dict[str, Any]) -> tuple[PageChapter | dict[str, str], int]:
    """Instructions for every take of a chapter (none: the voice's own again)."""
    if index >= len(desk.script.chapters):
        return {"error": "no such chapter"}, 404
    said = str(body.get("instructions") or "").strip() or None
    decide(desk, {take.id: {"instructions": said} for take in desk.script.takes_by_chapter[index]})
    return desk.chapter(index), 200


def add_word(desk: Desk, body: dict[str, Any]) -> dict[str, Any]:
    """A lexicon entry for the whole book, and where the takes it changes are (their ids follow their text)."""
    word, said = str(body.get("word", "")).strip(), str(body.get("replacement", "")).strip()
    if not word or not said or " " in word:
        raise ValueError("a lexicon entry is one word and what to say instead")
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    script = desk.script
    changes = [
        {"chapter": t.chapter, "position": position_of(script, t)} for t in script.takes if pattern.search(t.text)
    ]
    update_review(desk.job.path, lambda review: review.lexicon.__setitem__(word, said))
    desk.changed()
    return {"word": word, "replacement": said, "takes": changes}


def regenerate(desk: Desk, take_id: str) -> tuple[dict[str, Any], int]:
    """The take requested again (a new take beside the old ones): the take as shown now, or why not."""
    take = desk.take(take_id)
    if take is None:
        return {"error": "no such take"}, 404
    result = redo(desk.job, lambda script: [t for t in script.takes if t.id == take_id])
    desk.changed()
    failed = [r.error for r in result.outcome.results.values() if r.status == "failed"]
    if failed or result.outcome.fatal is not None:
        return {"error": failed[0] if failed else str(result.outcome.fatal)}, 502
    return {"take": desk.chapter(take.chapter).takes[position_of(desk.script, take)]}, 200
