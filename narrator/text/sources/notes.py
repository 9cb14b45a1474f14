"""Footnotes and endnotes: the readers leave note bodies as ``note`` blocks where the book prints them; here they
are dropped (the default: a listener cannot glance down the page) or read at the end of the chapter whose text
points to them. A chapter that held nothing but notes (an "Endnotes" section) is then no chapter."""

from __future__ import annotations

from dataclasses import replace

from ..document import Block, Chapter, Document, NotePlace

NOTES_HEADING = "Notes"


def place_notes(doc: Document, place: NotePlace) -> Document:
    notes: dict[str, list[Block]] = {}  # note id -> its paragraphs, in book order
    owner: dict[str, int] = {}  # note id -> the chapter that reads it: the first to point to it, else its own
    printed_in: dict[str, int] = {}
    for number, chapter in enumerate(doc.chapters):
        for block in chapter.blocks:
            if block.kind == "note":
                notes.setdefault(block.note, []).append(Block("paragraph", block.text, shown=block.shown))
                printed_in.setdefault(block.note, number)
    for number, chapter in enumerate(doc.chapters):
        for ref in (ref for b in chapter.blocks if b.kind != "note" for ref in b.refs):
            if ref in notes:
                owner.setdefault(ref, number)
    for note, number in printed_in.items():
        owner.setdefault(note, number)

    chapters: list[Chapter] = []
    dropped = list(doc.dropped)
    for number, chapter in enumerate(doc.chapters):
        body = [b for b in chapter.blocks if b.kind != "note"]
        if place == "end_of_chapter":
            # first pointer first; then the notes printed here that nothing points to, in book order
            pointed = [ref for b in body for ref in b.refs]
            order = [n for n in dict.fromkeys([*pointed, *notes]) if owner.get(n) == number]
            if order:
                body += [Block("heading", NOTES_HEADING, 2), *(p for n in order for p in notes[n])]
        if any(b.kind == "paragraph" for b in body):
            chapters.append(Chapter(chapter.title, tuple(body)))
        elif len(body) < len(chapter.blocks):
            where = "read with the chapters that point to them" if place == "end_of_chapter" else "notes: skip"
            dropped.append(f"{chapter.title}: only notes ({where})")
    return replace(doc, chapters=tuple(chapters), dropped=tuple(dropped))
