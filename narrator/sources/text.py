"""Plain text: paragraphs at blank lines; chapters at lines like ``CHAPTER IV``, ``Chapter 4``, ``IV.``."""

from __future__ import annotations

import re
from pathlib import Path

from ..document import Block, Chapter, Document
from .blocks import clean_text

_CHAPTER_LINE = re.compile(
    r"^\s*(?:(?:chapter|part|book)\s+(?:[ivxlcdm]+|\d+|[a-z]+(?:-[a-z]+)?)\b[.:]?.*|[IVXLCDM]+\.|\d{1,3}\.)\s*$",
    re.IGNORECASE,
)
_SCENE_BREAK = re.compile(r"^\s*([*#~⁂•·-]\s*){1,5}$")


def decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_text(path: Path) -> Document:
    raw = decode_text(path.read_bytes()).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p for p in re.split(r"\n\s*\n", raw) if p.strip()]
    chapters: list[Chapter] = []
    title: str | None = None
    blocks: list[Block] = []

    def close() -> None:
        if any(b.kind != "scene_break" for b in blocks):
            chapters.append(Chapter(title or path.stem, tuple(blocks)))

    for para in paragraphs:
        lines = para.strip().split("\n")
        if _CHAPTER_LINE.match(lines[0]) and len(lines[0]) <= 80:
            close()
            heading = clean_text(lines[0]).rstrip(".")
            rest = lines[1:]
            if rest and len(rest[0]) <= 80:  # a subtitle line right under the chapter line
                heading = f"{heading}: {clean_text(rest[0])}"
                rest = rest[1:]
            title, blocks = heading, [Block("heading", heading, 1)]
            if rest:
                blocks.append(Block("paragraph", clean_text(" ".join(rest))))
        elif _SCENE_BREAK.match(para):
            blocks.append(Block("scene_break"))
        else:
            blocks.append(Block("paragraph", clean_text(para)))
    close()
    doc_title = path.stem.replace("_", " ").replace("-", " ").strip().title()
    return Document(title=doc_title, chapters=tuple(chapters))
