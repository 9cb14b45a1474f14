"""HTML: chapters at h1/h2; scripts, styles and navigation ignored."""

from __future__ import annotations

from pathlib import Path

from ..document import Block, Chapter, Document
from .blocks import extract_blocks
from .text import decode_text


def split_chapters(blocks: list[Block], max_level: int, fallback_title: str) -> list[Chapter]:
    """Start a chapter at every heading of level <= max_level; text before the first one is its own."""
    chapters: list[Chapter] = []
    title = fallback_title
    current: list[Block] = []

    def close() -> None:
        if any(b.kind != "scene_break" for b in current):
            chapters.append(Chapter(title, tuple(current)))

    for block in blocks:
        if block.kind == "heading" and block.level <= max_level:
            close()
            title, current = block.text, []
        current.append(block)
    close()
    return chapters


def read_html(path: Path) -> Document:
    extracted = extract_blocks(decode_text(path.read_bytes(), path))
    first_heading = next((b.text for b in extracted.blocks if b.kind == "heading"), None)
    title = extracted.title or first_heading or path.stem
    chapters = split_chapters(extracted.blocks, 2, title)
    return Document(title=title, chapters=tuple(chapters))
