"""The read-along book (``output.formats: [epub]``): an EPUB 3 with Media Overlays, whose text lights up sentence
by sentence as a reader plays it (Thorium, BookFusion, Readest, Storyteller...).

Made at the book's join from what the build already has: each chapter's audio, encoded as a file of its own (a
segment of the "epub" kind, kept between runs by its fingerprint: a one-word edit encodes one chapter again and
repacks the zip), and each sentence's clip (clips.py). From one EPUB 3 source the book is the publisher's, with
spans added (publisher.py); from anything else, one clean page per chapter (pages.py). package.py writes the
overlays and the zip.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from pathlib import Path

from ...synthesis.script import Script
from ...text.sources.epubzip import Package, read_package
from ..assemble import ChapterAudio
from .clips import Clip, chapter_clips
from .package import (
    AUDIO_TYPE,
    PAGE_STYLE,
    STYLESHEET,
    Book,
    Members,
    Overlay,
    Par,
    book_identifier,
    package_document,
    smil,
    with_overlays,
    write_zip,
)
from .pages import Span, chapter_page, nav_page
from .publisher import mark_sentences

__all__ = ["Clip", "chapter_clips", "write_read_along"]

CONTAINER = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">\n'
    '<rootfiles><rootfile full-path="{opf}" media-type="application/oebps-package+xml"/></rootfiles>\n'
    "</container>\n"
)


def write_read_along(script: Script, dest: Path, audio: Sequence[Path], chapters: Sequence[ChapterAudio]) -> None:
    """The read-along book at ``dest``: ``audio``, each chapter's own file (AAC in MP4), in order;
    ``chapters``, the chapters as assembled (their placements time the sentences)."""
    clips = [
        clip
        for chapter in chapters
        for clip in chapter_clips(chapter, script.by_chapter[chapter.index], script.chapters[chapter.index].blocks)
    ]
    sources = script.job.sources
    if len(sources) == 1 and sources[0].format == "epub":
        package = read_package(sources[0].path)
        if package.version.startswith("3"):
            try:
                write_zip(dest, _from_publisher(script, package, clips, audio))
                return
            except UnicodeDecodeError:
                pass  # a page not in UTF-8: the clean pages below
    write_zip(dest, _from_chapters(script, clips, audio))


def _audio_name(index: int) -> str:
    return f"c{index + 1:03d}.m4a"


def _shown(script: Script) -> dict[tuple[int, int], str]:
    return {
        (c, b): block.shown or block.text
        for c, chapter in enumerate(script.chapters)
        for b, block in enumerate(chapter.blocks)
    }


def _from_chapters(script: Script, clips: list[Clip], audio: Sequence[Path]) -> Members:
    """Clean pages, one per chapter, each with its overlay."""
    doc, job = script.document, script.job
    language = doc.language or "en"
    members: Members = {"META-INF/container.xml": CONTAINER.format(opf="OEBPS/content.opf").encode()}
    members["OEBPS/style/readalong.css"] = STYLESHEET + PAGE_STYLE
    manifest = [
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>',
        '<item id="css" href="style/readalong.css" media-type="text/css"/>',
    ]
    if doc.cover is not None:
        members[f"OEBPS/images/cover{doc.cover.extension}"] = doc.cover.data
        manifest.append(
            f'<item id="cover" href="images/cover{doc.cover.extension}" media-type="{doc.cover.media_type}"'
            ' properties="cover-image"/>'
        )
    spine, overlays = [], []
    for index, chapter in enumerate(script.chapters):
        mine = [c for c in clips if c.chapter == index]
        spans: dict[int, list[Span]] = {}
        for n, clip in enumerate(mine, 1):
            spans.setdefault(clip.block, []).append((clip.begin, clip.end, f"s{n}"))
        name = f"c{index + 1:03d}"
        page = f"OEBPS/text/{name}.xhtml"
        members[page] = chapter_page(chapter.title, language, chapter.blocks, spans, "../style/readalong.css")
        members[f"OEBPS/audio/{_audio_name(index)}"] = audio[index]
        pars = [Par(f"s{n}", f"../audio/{_audio_name(index)}", c.start, c.stop) for n, c in enumerate(mine, 1)]
        overlay = Overlay(f"OEBPS/smil/{name}.smil", page, pars)
        manifest += [
            f'<item id="{name}" href="text/{name}.xhtml" media-type="application/xhtml+xml"'
            + (f' media-overlay="mo-{name}"/>' if pars else "/>"),
            f'<item id="audio-{name}" href="audio/{_audio_name(index)}" media-type="{AUDIO_TYPE}"/>',
        ]
        if pars:
            members[overlay.path] = smil(overlay)
            manifest.append(f'<item id="mo-{name}" href="smil/{name}.smil" media-type="application/smil+xml"/>')
            overlays.append((f"mo-{name}", overlay))
        spine.append(name)
    toc = [(chapter.title, f"text/c{i + 1:03d}.xhtml") for i, chapter in enumerate(script.chapters)]
    members["OEBPS/nav.xhtml"] = nav_page(doc.title, language, toc)
    identifier = book_identifier(doc.title, doc.author or "", *(s.path.name for s in job.sources))
    about = Book(identifier, doc.title, doc.author, language, job.narrator)
    members["OEBPS/content.opf"] = package_document(about, manifest, spine, overlays)
    return members


def _from_publisher(script: Script, package: Package, clips: list[Clip], audio: Sequence[Path]) -> Members:
    """The publisher's book, its pages with spans, its package with the overlays, their audio and stylesheet."""
    opf_dir = posixpath.dirname(package.opf_path)
    ours = posixpath.join(opf_dir, "narrator")
    css = posixpath.join(ours, "readalong.css")
    pages = [package.members[p].decode("utf-8") for p in package.spine]
    links = [posixpath.relpath(css, posixpath.dirname(p) or ".") for p in package.spine]
    marked = mark_sentences(pages, clips, _shown(script), links)
    members: Members = dict(package.members)
    overlays: list[tuple[str, Overlay]] = []
    for doc, page in enumerate(package.spine):
        highlights = [h for h in marked.highlights if h.doc == doc]
        if highlights:
            members[page] = marked.documents[doc]
            pars = [Par(h.span_id, f"../audio/{_audio_name(h.chapter)}", h.start, h.stop) for h in highlights]
            overlay = Overlay(posixpath.join(ours, "smil", f"{doc + 1:03d}.smil"), page, pars)
            members[overlay.path] = smil(overlay)
            overlays.append((f"narrator-mo-{doc + 1}", overlay))
    added = {"narrator-css": (css, "text/css")}
    for chapter in sorted({h.chapter for h in marked.highlights}):
        path = posixpath.join(ours, "audio", _audio_name(chapter))
        members[path] = audio[chapter]
        added[f"narrator-audio-{chapter + 1}"] = (path, AUDIO_TYPE)
    members[css] = STYLESHEET
    opf = package.members[package.opf_path].decode("utf-8")
    members[package.opf_path] = with_overlays(opf, opf_dir, overlays, added, script.job.narrator)
    return members
