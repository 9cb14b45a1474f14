"""EPUB 2 and 3, read from the zip itself.

Reading order comes from the spine, never from file names. Chapter titles come from the EPUB 3 nav
document or the EPUB 2 NCX (nested entries flattened; several entries in one file split it at their
anchors; a file with no entry continues the chapter before it). Cover, table of contents, copyright
and similar pages are not read (landmarks, guide, ``epub:type``, ``linear="no"``). XML is parsed
with defusedxml: no external entities, no network.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

from ...core.errors import SourceError
from ..document import (
    Block,
    Chapter,
    Cover,
    Document,
    ReadOptions,
    same_words,
    sniff_image_type,
    unread_front,
    without_text,
)
from .blocks import TITLE_PAGES, clean_text, extract_blocks
from .epubzip import NS, EpubZip, package_path, resolve
from .notes import place_notes
from .writer import ExtractedBlocks

EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
# Landmark / guide / epub:type values whose pages are not narrated.
SKIP_TYPES = {
    "cover",
    "toc",
    "copyright-page",
    "copyright",
    "titlepage",
    "title-page",
    "halftitlepage",
    "index",
    "colophon",
    "imprint",
    "loi",
    "lot",
    "endnotes",
    "rearnotes",
    "footnotes",
    "page-list",
    "landmarks",
}


@dataclass(frozen=True)
class TocEntry:
    title: str
    path: str  # zip member name
    fragment: str | None


@dataclass(frozen=True)
class ManifestItem:
    id: str
    path: str
    media_type: str
    properties: frozenset[str]


def read_epub(path: Path, options: ReadOptions | None = None) -> Document:
    book = EpubZip(path)
    if "META-INF/encryption.xml" in book.names:
        enc = book.read("META-INF/encryption.xml")
        if b"EncryptedData" in enc:
            raise SourceError(f"{path}: the book is encrypted (DRM); narrator reads DRM-free EPUBs only")
    opf_path = package_path(book, path)
    opf = book.xml(opf_path)
    opf_dir = posixpath.dirname(opf_path)

    manifest: dict[str, ManifestItem] = {}
    for item in opf.iterfind("opf:manifest/opf:item", NS):
        item_path, _ = resolve(opf_dir, item.get("href", ""))
        manifest[item.get("id", "")] = ManifestItem(
            item.get("id", ""),
            item_path,
            item.get("media-type", ""),
            frozenset(item.get("properties", "").split()),
        )

    metadata = opf.find("opf:metadata", NS)
    title = _text(metadata, "dc:title") or path.stem
    author = _text(metadata, "dc:creator")
    language = _text(metadata, "dc:language")

    spine_el = opf.find("opf:spine", NS)
    if spine_el is None:
        raise SourceError(f"{path}: the package document has no spine")
    spine: list[ManifestItem] = []
    for ref in spine_el.iterfind("opf:itemref", NS):
        entry = manifest.get(ref.get("idref", ""))
        if entry is not None and ref.get("linear", "yes") != "no":
            spine.append(entry)

    toc, skip_paths = _contents(book, opf, opf_dir, manifest, spine_el)
    cover = _find_cover(book, manifest, metadata)
    options = options or ReadOptions()
    chapters, dropped = _build_chapters(book, spine, toc, _Skipped(skip_paths, (title, author or "")), options)
    doc = Document(title, tuple(chapters), author, language, cover, dropped)
    return place_notes(doc, options.notes)


def _contents(
    book: EpubZip, opf: Element, opf_dir: str, manifest: dict[str, ManifestItem], spine_el: Element
) -> tuple[list[TocEntry], dict[str, str]]:
    """The table of contents (EPUB 3 nav, else the NCX), and the pages not to read with why (landmarks, guide)."""
    nav_item = next((m for m in manifest.values() if "nav" in m.properties), None)
    toc: list[TocEntry] = []
    skip_paths: dict[str, str] = {}  # page -> why it is not read (its landmark: "titlepage", "toc", ...)
    if nav_item is not None:
        toc, skip_paths = _read_nav(book, nav_item.path)
        skip_paths.setdefault(nav_item.path, "toc")
    if not toc:
        ncx_item = manifest.get(spine_el.get("toc", "")) or next(
            (m for m in manifest.values() if m.media_type == "application/x-dtbncx+xml"), None
        )
        if ncx_item is not None:
            toc = _read_ncx(book, ncx_item.path)
    for ref in opf.iterfind("opf:guide/opf:reference", NS):
        if ref.get("type", "").lower() in SKIP_TYPES:
            skip_paths.setdefault(resolve(opf_dir, ref.get("href", ""))[0], ref.get("type", "").lower())

    return toc, skip_paths


def _text(parent: Element | None, tag: str) -> str | None:
    if parent is None:
        return None
    el = parent.find(tag, NS)
    return clean_text("".join(el.itertext())) or None if el is not None else None


def _read_nav(book: EpubZip, nav_path: str) -> tuple[list[TocEntry], dict[str, str]]:
    root = book.xml(nav_path)
    base = posixpath.dirname(nav_path)
    toc: list[TocEntry] = []
    skip: dict[str, str] = {}
    for nav in root.iter(f"{{{NS['xhtml']}}}nav"):
        kind = set(nav.get(EPUB_TYPE, "").split())
        if "toc" in kind:
            ol = nav.find("xhtml:ol", NS)
            if ol is not None:
                toc = _flatten_nav_list(ol, base)
        elif "landmarks" in kind:
            for a in nav.iter(f"{{{NS['xhtml']}}}a"):
                if kinds := set(a.get(EPUB_TYPE, "").split()) & SKIP_TYPES:
                    skip.setdefault(resolve(base, a.get("href", ""))[0], min(kinds))
    return toc, skip


def _flatten_nav_list(ol: Element, base: str) -> list[TocEntry]:
    entries: list[TocEntry] = []
    for li in ol.findall("xhtml:li", NS):
        link = li.find("xhtml:a", NS)
        children = li.find("xhtml:ol", NS)
        sub = _flatten_nav_list(children, base) if children is not None else []
        if link is not None and link.get("href"):
            target, fragment = resolve(base, link.get("href", ""))
            entry = TocEntry(clean_text("".join(link.itertext())), target, fragment)
            # a part whose link lands where its first child starts adds no marker of its own
            if not (sub and (sub[0].path, sub[0].fragment) == (entry.path, entry.fragment)):
                entries.append(entry)
        entries.extend(sub)
    return entries


def _read_ncx(book: EpubZip, ncx_path: str) -> list[TocEntry]:
    root = book.xml(ncx_path)
    base = posixpath.dirname(ncx_path)
    nav_map = root.find("ncx:navMap", NS)
    return _flatten_ncx(nav_map, base) if nav_map is not None else []


def _flatten_ncx(parent: Element, base: str) -> list[TocEntry]:
    entries: list[TocEntry] = []
    for point in parent.findall("ncx:navPoint", NS):
        label = point.find("ncx:navLabel/ncx:text", NS)
        content = point.find("ncx:content", NS)
        sub = _flatten_ncx(point, base)
        if content is not None and content.get("src"):
            target, fragment = resolve(base, content.get("src", ""))
            title = clean_text("".join(label.itertext())) if label is not None else ""
            entry = TocEntry(title, target, fragment)
            if not (sub and (sub[0].path, sub[0].fragment) == (entry.path, entry.fragment)):
                entries.append(entry)
        entries.extend(sub)
    return entries


def _find_cover(book: EpubZip, manifest: dict[str, ManifestItem], metadata: Element | None) -> Cover | None:
    candidates = [m for m in manifest.values() if "cover-image" in m.properties]
    if metadata is not None:
        for meta in metadata.iterfind("opf:meta", NS):
            if meta.get("name") == "cover" and meta.get("content") in manifest:
                candidates.append(manifest[meta.get("content", "")])
    candidates += [m for m in manifest.values() if m.media_type.startswith("image/") and "cover" in m.id.lower()]
    for item in candidates:
        if item.path in book.names:
            data = book.read(item.path)
            media_type = sniff_image_type(data)
            if media_type:
                return Cover(data, media_type)
    return None


@dataclass(frozen=True)
class _Skipped:
    """The pages the book's landmarks say are not narrated, and the book's title and author (a title page that
    holds only those carries nothing more)."""

    pages: dict[str, str]  # path -> its landmark
    names: tuple[str, str]

    def read(
        self, path: str, page: ExtractedBlocks, options: ReadOptions, entries: list[TocEntry] | None
    ) -> Chapter | str | None:
        """A title page that carries more than the title and author (a dedication, an epigraph): a chapter of
        its own when the source asks for it (``front_matter: read``), else a line saying what is not read. Any
        other page skipped: a line. None when nothing is lost."""
        name = posixpath.basename(path)
        if path not in self.pages:  # a page read as text: a title page section in it was kept aside
            return unread_front(name, page.front, self.names) if page.front else None
        kind = self.pages[path]
        blocks = [*page.front, *page.blocks]
        if kind not in TITLE_PAGES:
            return f"{name} ({kind}): not read"  # its own markup may hide its text too: say it whatever it holds
        if options.front_matter == "read" and unread_front(name, blocks, self.names) is not None:
            title = entries[0].title if entries else "Title page"
            return Chapter(title, tuple(b for b in blocks if b.kind != "scene_break"))
        return unread_front(name, blocks, self.names)


@dataclass
class _Chapters:
    """The chapters as the spine is read: text gathers under the current title until the next one."""

    chapters: list[Chapter] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # titles with no text under them
    not_read: list[str] = field(default_factory=list)  # pages skipped: what they hold (nothing vanishes unsaid)
    title: str | None = None
    blocks: list[Block] = field(default_factory=list)
    carried: list[Block] = field(default_factory=list)  # a part page's title, heard at its first chapter's start

    def close(self) -> None:
        title, blocks = self.title, self.blocks
        if title is None:
            return
        opening = next((i for i, b in enumerate(blocks) if b.kind != "scene_break"), None)
        if opening is not None and blocks[opening].kind == "paragraph" and same_words(blocks[opening].text, title):
            blocks[opening] = Block("heading", blocks[opening].text, 1)  # a title set as a styled paragraph
        if any(b.kind in ("paragraph", "note") for b in blocks):
            self.chapters.append(Chapter(title, (*self.carried, *blocks)))
            self.carried = []
        elif any(b.kind == "heading" for b in blocks):
            self.carried += [b for b in blocks if b.kind == "heading"]
        else:
            self.empty.append(title)

    def start(self, title: str | None) -> None:
        self.close()
        self.title, self.blocks = title, []

    def name(self, title: str) -> None:
        """The text gathered so far, if it has no title yet, takes this one; else a chapter of this title starts."""
        if self.title is None:
            self.title = title
        else:
            self.start(title)

    def result(self) -> tuple[list[Chapter], tuple[str, ...]]:
        self.close()
        return self.chapters, (*self.not_read, *without_text([*self.empty, *(b.text for b in self.carried)]))


def _build_chapters(
    book: EpubZip,
    spine: list[ManifestItem],
    toc: list[TocEntry],
    skipped: _Skipped,
    options: ReadOptions,
) -> tuple[list[Chapter], tuple[str, ...]]:
    entries_by_path: dict[str, list[TocEntry]] = {}
    for entry in toc:
        entries_by_path.setdefault(entry.path, []).append(entry)
    built = _Chapters()
    for item in spine:
        if "xhtml" not in item.media_type and "html" not in item.media_type:
            continue
        extracted = extract_blocks(book.read(item.path).decode("utf-8", errors="replace"), options)
        front = skipped.read(item.path, extracted, options, entries_by_path.get(item.path))
        if isinstance(front, Chapter):
            built.start(None)
            built.chapters.append(front)
        elif front:
            built.not_read.append(front)
        if item.path in skipped.pages:
            continue
        splits = sorted(
            (extracted.anchors.get(e.fragment, 0) if e.fragment else 0, i, e)
            for i, e in enumerate(entries_by_path.get(item.path, []))
        )
        position = 0
        for start, _, entry in splits:
            built.blocks.extend(extracted.blocks[position:start])
            built.start(entry.title)
            position = start
        rest = extracted.blocks[position:]
        if (built.title is None or (not toc and built.blocks)) and rest:
            # text before any nav entry (or a book with no navigation): a chapter named by its heading
            heading = next((b.text for b in rest if b.kind == "heading"), None)
            named = heading or extracted.title or f"Chapter {len(built.chapters) + 1}"
            built.name(named)
        built.blocks.extend(rest)
    return built.result()
