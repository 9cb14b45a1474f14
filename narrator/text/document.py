"""The document model every source reader produces: chapters made of blocks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["heading", "paragraph", "scene_break", "note"]
ImageText = Literal["caption", "alt", "skip"]
NotePlace = Literal["skip", "end_of_chapter"]
TableReading = Literal["rows", "skip"]
FrontMatter = Literal["skip", "read"]


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    text: str = ""
    level: int = 0  # heading level 1-6; 0 for other blocks
    note: str = ""  # kind "note": the id of the footnote or endnote this paragraph belongs to
    refs: tuple[str, ...] = ()  # the ids of the notes whose markers stood in this paragraph
    #: the block as printed, for the eye (subtitles): verse keeps its lines ("\n") and none of the commas added
    #: for the ear, and the source's own characters stay (no lexicon, no "Mister"). Empty: as ``text`` was read
    shown: str = ""


@dataclass(frozen=True)
class ReadOptions:
    """How a source's figures, tables and notes are read (a job's ``sources[]`` keys of the same names)."""

    images: ImageText = "caption"  # read figure captions; or the images' alt text; or neither
    tables: TableReading = "rows"  # each row with its header cells ("Year: 1850; Ships: 12."), or announce and skip
    notes: NotePlace = "skip"  # footnote and endnote bodies: never read, or read after their chapter
    split_at: int | None = None  # Markdown and HTML: chapters at headings of this level and above
    front_matter: FrontMatter = "skip"  # EPUB: a title page's dedication or epigraph is listed as not read, or read


@dataclass(frozen=True)
class Chapter:
    title: str
    blocks: tuple[Block, ...]
    source: int = 0  # which of the job's sources it comes from (its voice may be that source's own)


@dataclass(frozen=True)
class Cover:
    data: bytes
    media_type: str  # image/jpeg or image/png

    @property
    def extension(self) -> str:
        return ".png" if self.media_type == "image/png" else ".jpg"


@dataclass(frozen=True)
class Document:
    title: str
    chapters: tuple[Chapter, ...]
    author: str | None = None
    language: str | None = None
    cover: Cover | None = None
    dropped: tuple[str, ...] = ()  # parts of the source that are not chapters, and why ("Contents: no text")


_CHAPTER_RANGE = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")


def chapter_range(choice: str) -> tuple[int, int] | None:
    """A chapter choice of the form "3-5" (the job's ``chapters:``, ``--chapters``): its bounds, as written."""
    match = _CHAPTER_RANGE.fullmatch(choice)
    return (int(match.group(1)), int(match.group(2))) if match else None


def sniff_image_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def without_text(titles: list[str]) -> tuple[str, ...]:
    """What a plan says of headings that had no text under them (a table of contents, an empty part page)."""
    if not titles:
        return ()
    shown = ", ".join(titles[:4]) + (f" and {len(titles) - 4} more" if len(titles) > 4 else "")
    many = len(titles) > 1
    return (f"{len(titles)} heading{'s' if many else ''} with no text under {'them' if many else 'it'}: {shown}",)


def unread_front(where: str, blocks: Sequence[Block], names: Iterable[str]) -> str | None:
    """What a plan says of a title page's text that is not read: None when it holds nothing but ``names`` (the
    book's title and author, "by Ann Writer"), else how much, and how it starts."""
    names = [n for n in names if n]
    said = [b for b in blocks if b.kind in ("paragraph", "heading") and not _is_name(b.text, names)]
    if not said:
        return None
    words = said[0].text.split()
    opening = " ".join(words[:8]) + ("…" if len(words) > 8 else "")
    count, them = (f"{len(said)} paragraphs", "them") if len(said) > 1 else ("1 paragraph", "it")
    return f"{where} (title page): {count} not read, starting “{opening}” (front_matter: read reads {them})"


_BYLINE = re.compile(r"^\s*by\s+\S+(\s+\S+){0,4}\s*$", re.IGNORECASE)  # "by Ann Writer": a title page's author


def _is_name(text: str, names: list[str]) -> bool:
    return bool(_BYLINE.match(text)) or any(same_words(text, n) for n in names)


def same_words(a: str, b: str) -> bool:
    """The same words whatever the case and punctuation: a title printed "CHAPTER 1." is the nav's "Chapter 1"."""
    return re.sub(r"\W+", " ", a).strip().casefold() == re.sub(r"\W+", " ", b).strip().casefold()
