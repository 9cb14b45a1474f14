"""HTML: chapters at its headings (see split_chapters); scripts, styles and navigation ignored."""

from __future__ import annotations

from pathlib import Path

from ..document import Block, Chapter, Document, ReadOptions, unread_front
from .blocks import extract_blocks
from .notes import place_notes
from .text import decode_text


def split_chapters(blocks: list[Block], fallback_title: str, split_at: int | None = None) -> list[Chapter]:
    """Chapters at the headings of level ``split_at`` and above; by default at the highest level that gives more
    than one chapter (a `#` title over `##` articles splits at the articles). Text before the first heading is a
    chapter named ``fallback_title``."""
    for level in [split_at] if split_at else range(1, 7):
        chapters = _split(blocks, level, fallback_title)
        if len(chapters) > 1:
            return chapters
    return chapters if split_at else _split(blocks, 1, fallback_title)


def _split(blocks: list[Block], max_level: int, fallback_title: str) -> list[Chapter]:
    """A heading with nothing but headings after it (a part's or the book's title) opens the next chapter
    instead of becoming one of its own: it is spoken first, the next heading names the chapter."""
    chapters: list[Chapter] = []
    title = fallback_title
    current: list[Block] = []
    carried: list[Block] = []

    def close() -> None:
        nonlocal carried
        if any(b.kind in ("paragraph", "note") for b in current):
            chapters.append(Chapter(title, (*carried, *current)))
            carried = []
        elif any(b.kind == "heading" for b in current):
            carried = [*carried, *(b for b in current if b.kind == "heading")]

    for block in blocks:
        if block.kind == "heading" and block.level <= max_level:
            close()
            title, current = block.text, []
        current.append(block)
    close()
    return chapters


def read_html(path: Path, options: ReadOptions | None = None) -> Document:
    options = options or ReadOptions()
    extracted = extract_blocks(decode_text(path.read_bytes(), path), options)
    first_heading = next((b.text for b in extracted.blocks if b.kind == "heading"), None)
    title = extracted.title or first_heading or path.stem
    chapters = split_chapters(extracted.blocks, title, options.split_at)
    unread = unread_front(path.name, extracted.front, (title, extracted.title or ""))
    document = Document(title=title, chapters=tuple(chapters), dropped=(unread,) if unread else ())
    return place_notes(document, options.notes)
