"""Source readers: one per format, each returning a Document. ``load_document`` joins a job's sources."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from ...core.errors import SourceError
from ..document import (
    Block,
    Chapter,
    Cover,
    Document,
    FrontMatter,
    ImageText,
    NotePlace,
    ReadOptions,
    TableReading,
    chapter_range,
    same_words,
    sniff_image_type,
)
from . import epub, html, markdown, text

READERS: dict[str, Callable[[Path, ReadOptions], Document]] = {
    "epub": epub.read_epub,
    "markdown": markdown.read_markdown,
    "html": html.read_html,
    "text": text.read_text,
}
SOURCE_FORMATS = tuple(READERS)
EXTENSIONS = {
    ".epub": "epub",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".txt": "text",
    ".text": "text",
}


class SourceSpec(Protocol):
    """A source as a job names it (``job.spec.SourceSpec`` is one): all the readers need of it."""

    @property
    def path(self) -> Path: ...
    @property
    def format(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def chapters(self) -> Sequence[int | str] | None: ...
    @property
    def images(self) -> ImageText: ...
    @property
    def tables(self) -> TableReading: ...
    @property
    def notes(self) -> NotePlace: ...
    @property
    def split_at(self) -> int | None: ...
    @property
    def front_matter(self) -> FrontMatter: ...


def read_options(spec: SourceSpec) -> ReadOptions:
    return ReadOptions(
        images=spec.images, tables=spec.tables, notes=spec.notes, split_at=spec.split_at, front_matter=spec.front_matter
    )


def read_source(spec: SourceSpec) -> Document:
    try:
        doc = READERS[spec.format](spec.path, read_options(spec))
    except SourceError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"{spec.path}: cannot read {spec.format} source: {exc}") from None
    except RecursionError:  # a document nested thousands of levels deep (XML, HTML, a table of contents)
        raise SourceError(f"{spec.path}: nested too deeply to read") from None
    if not doc.chapters:
        raise SourceError(f"{spec.path}: no readable text found")
    if spec.chapters is not None:
        doc = select_chapters(doc, spec.chapters, f"{spec.path}: chapters")
    if spec.title:
        doc = _retitle(doc, spec.title)
    return doc


def select_chapters(doc: Document, wanted: Sequence[int | str], where: str) -> Document:
    """The chapters ``wanted`` names (numbers from 1, "3-5" ranges, titles as the source gives them), in reading
    order: a choice never reorders a book."""
    titles = [c.title for c in doc.chapters]
    picked: set[int] = set()
    for choice in wanted:
        if isinstance(choice, int):
            numbers = [choice]
        elif bounds := chapter_range(choice):
            numbers = list(range(bounds[0], bounds[1] + 1))
        else:
            numbers = [n for n, title in enumerate(titles, 1) if title == choice]
            if not numbers:
                raise SourceError(f"{where}: no chapter titled {choice!r}; it has: {', '.join(titles)}")
        if not numbers or numbers[0] < 1:
            raise SourceError(f"{where}: {choice} names no chapter (chapters count from 1; a range reads low-high)")
        if numbers[-1] > len(titles):
            raise SourceError(f"{where}: {choice} is past its last chapter ({len(titles)}: {titles[-1]})")
        picked.update(numbers)
    return replace(doc, chapters=tuple(doc.chapters[n - 1] for n in sorted(picked)))


def _retitle(doc: Document, title: str) -> Document:
    """A one-chapter source takes the title; a several-chapter source prefixes its chapters with it."""
    chapters: tuple[Chapter, ...]
    if len(doc.chapters) == 1:
        chapters = (Chapter(title, doc.chapters[0].blocks),)
    else:
        chapters = tuple(
            Chapter(c.title if c.title == title else f"{title}: {c.title}", c.blocks) for c in doc.chapters
        )
    return replace(doc, chapters=chapters)


def load_document(
    sources: Sequence[SourceSpec],
    *,
    title: str | None = None,
    author: str | None = None,
    cover_path: Path | None = None,
) -> Document:
    """Read every source in order into one Document; metadata defaults come from the first source."""
    docs = [read_source(spec) for spec in sources]
    chapters = tuple(replace(with_spoken_title(c), source=i) for i, d in enumerate(docs) for c in d.chapters)
    cover = docs[0].cover if docs else None
    if cover_path is not None:
        data = cover_path.read_bytes()
        media_type = sniff_image_type(data)
        if media_type is None:
            raise SourceError(f"{cover_path}: cover must be a JPEG or PNG image")
        cover = Cover(data, media_type)
    elif cover is None:
        cover = next((d.cover for d in docs if d.cover), None)
    first = docs[0]
    return Document(
        title=title or first.title,
        chapters=chapters,
        author=author or first.author,
        language=first.language,
        cover=cover,
        dropped=tuple(f"{s.path.name}: {d}" for s, doc in zip(sources, docs, strict=True) for d in doc.dropped),
    )


def with_spoken_title(chapter: Chapter) -> Chapter:
    """Tidy a chapter's scene breaks (none at either end, never two in a row) and, when it does not
    open with a heading, give it its title as one, so the listener hears it."""
    blocks: list[Block] = []
    for block in chapter.blocks:
        if block.kind == "scene_break" and (not blocks or blocks[-1].kind == "scene_break"):
            continue
        blocks.append(block)
    while blocks and blocks[-1].kind == "scene_break":
        blocks.pop()
    if blocks and blocks[0].kind == "paragraph" and same_words(blocks[0].text, chapter.title):
        blocks[0] = Block("heading", blocks[0].text, 1)  # its title, set as a styled paragraph
    elif not blocks or blocks[0].kind != "heading":
        blocks.insert(0, Block("heading", chapter.title, 1))
    return replace(chapter, blocks=tuple(blocks))
