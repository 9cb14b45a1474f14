"""The EPUB 3 container of a read-along book: Media Overlays (one SMIL 3.0 document per page with spans), the
metadata EPUBCheck asks of them (each overlay's ``media:duration``, the total, ``media:active-class``), the
stylesheet that gives the active class its colour, and the zip as OCF wants it."""

from __future__ import annotations

import posixpath
import re
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

from ...core.audio import AtomicFile
from .pages import attribute, text

ACTIVE_CLASS = "narrator-active"
STYLESHEET = (
    f".{ACTIVE_CLASS} {{ background-color: #ffe58a; color: #000; border-radius: 0.15em; }}\n"
    ".scene-break { text-align: center; }\n.note { font-size: 0.9em; }\n"
).encode()
# the clean pages' own look (a publisher's book keeps its own stylesheets)
PAGE_STYLE = b"body { margin: 4% 6%; line-height: 1.5; font-family: serif; }\nh1, h2, h3 { line-height: 1.2; }\n"
AUDIO_TYPE = "audio/mp4"


@dataclass(frozen=True)
class Par:
    """One sentence of an overlay: the span it names and its clip (audio href relative to the SMIL file)."""

    span_id: str
    audio: str
    start: float
    stop: float


@dataclass(frozen=True)
class Overlay:
    """A page's Media Overlay: where the SMIL goes, the page it reads (both zip member names), its sentences."""

    path: str
    page: str
    pars: Sequence[Par]

    @property
    def duration(self) -> float:
        return sum(p.stop - p.start for p in self.pars)


def clock(seconds: float) -> str:
    """A SMIL full clock value (h:mm:ss.fff), the form ``media:duration`` takes too."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{h}:{m:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def smil(overlay: Overlay) -> bytes:
    page = posixpath.relpath(overlay.page, posixpath.dirname(overlay.path))
    pars = "\n".join(
        f'<par id="par{n}"><text src="{attribute(page)}#{attribute(p.span_id)}"/>'
        f'<audio src="{attribute(p.audio)}" clipBegin="{clock(p.start)}" clipEnd="{clock(p.stop)}"/></par>'
        for n, p in enumerate(overlay.pars, 1)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<smil xmlns="http://www.w3.org/ns/SMIL" xmlns:epub="http://www.idpf.org/2007/ops" version="3.0">\n'
        f'<body>\n<seq id="seq1" epub:textref="{attribute(page)}">\n{pars}\n</seq>\n</body>\n</smil>\n'
    ).encode()


def overlay_metadata(overlays: Sequence[tuple[str, Overlay]], narrator: str | None) -> str:
    """The package's meta elements for its overlays, by manifest id."""
    metas = [f'<meta property="media:duration" refines="#{i}">{clock(o.duration)}</meta>' for i, o in overlays]
    metas.append(f'<meta property="media:duration">{clock(sum(o.duration for _, o in overlays))}</meta>')
    metas.append(f'<meta property="media:active-class">{ACTIVE_CLASS}</meta>')
    if narrator:
        metas.append(f'<meta property="media:narrator">{text(narrator)}</meta>')
    return "\n".join(metas)


def modified_now() -> str:
    return f'<meta property="dcterms:modified">{datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}</meta>'


def book_identifier(*parts: str) -> str:
    """The same book gets the same identifier run after run."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'narrator:' + '/'.join(parts))}"


@dataclass(frozen=True)
class Book:
    """What a new package document says of its book."""

    identifier: str
    title: str
    author: str | None
    language: str
    narrator: str | None


def package_document(
    book: Book, manifest: Sequence[str], spine: Sequence[str], overlays: Sequence[tuple[str, Overlay]]
) -> bytes:
    """The package document of a book made of clean pages: ``manifest``, its item elements; ``spine``, the ids of
    its pages in reading order."""
    creator = f"<dc:creator>{text(book.author)}</dc:creator>\n" if book.author else ""
    items, refs = "\n".join(manifest), "\n".join(f'<itemref idref="{i}"/>' for i in spine)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid"'
        f' xml:lang="{attribute(book.language)}">\n'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f'<dc:identifier id="uid">{book.identifier}</dc:identifier>\n<dc:title>{text(book.title)}</dc:title>\n'
        f"{creator}<dc:language>{text(book.language)}</dc:language>\n{modified_now()}\n"
        f"{overlay_metadata(overlays, book.narrator)}\n</metadata>\n"
        f"<manifest>\n{items}\n</manifest>\n<spine>\n{refs}\n</spine>\n</package>\n"
    ).encode()


_ITEM = re.compile(r"<item\b(?:[^\"'>]|\"[^\"]*\"|'[^']*')*?(/?)>", re.S)
_HREF = re.compile(r"""\bhref\s*=\s*(["'])(.*?)\1""", re.S)


def with_overlays(
    opf: str,
    opf_dir: str,
    overlays: Sequence[tuple[str, Overlay]],
    added: dict[str, tuple[str, str]],
    narrator: str | None,
) -> bytes:
    """A publisher's package document with the overlays: each page's item names its overlay, the manifest lists
    the overlays and ``added`` (id -> zip member, media type), and the metadata gets the overlays' figures. The
    rest is left as the publisher wrote it."""
    by_page = {o.page: i for i, o in overlays}

    def naming_overlay(item: re.Match[str]) -> str:
        tag = item.group()
        href = _HREF.search(tag)
        target = posixpath.normpath(posixpath.join(opf_dir, unquote(href.group(2)))) if href else ""
        if target not in by_page or "media-overlay" in tag:
            return tag
        end = len(tag) - len(item.group(1)) - 1
        return f'{tag[:end].rstrip()} media-overlay="{by_page[target]}"{tag[end:]}'

    opf = _ITEM.sub(naming_overlay, opf)
    listed = {**{i: (o.path, "application/smil+xml") for i, o in overlays}, **added}
    items = [
        f'<item id="{i}" href="{attribute(posixpath.relpath(path, opf_dir or "."))}" media-type="{media}"/>'
        for i, (path, media) in listed.items()
    ]
    opf = opf.replace("</manifest>", "\n".join(items) + "\n</manifest>", 1)
    metas = overlay_metadata(overlays, narrator)
    if "dcterms:modified" not in opf:  # EPUB 3 requires it; an EPUB 3 that lacks it gets the time of this build
        metas = modified_now() + "\n" + metas
    opf = re.sub(r"</(\w+:)?metadata>", lambda m: metas + "\n" + m.group(), opf, count=1)
    return opf.encode("utf-8")


Members = dict[str, bytes | Path]  # zip member name -> its bytes, or the file that holds them


def write_zip(dest: Path, members: Members) -> None:
    """The book, written atomically: ``mimetype`` first and uncompressed (OCF), audio stored (it does not
    shrink), the rest deflated. A member given as a path (a chapter's audio) is copied from its file, never held
    in memory whole: a long book's audio is hundreds of MB."""
    target = AtomicFile(dest)
    try:
        with zipfile.ZipFile(target.file, "w") as z:
            z.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip", zipfile.ZIP_STORED)
            for name, data in members.items():
                if name == "mimetype":
                    continue
                stored = re.search(r"\.(m4a|mp3|mp4|png|jpe?g)$", name) is not None
                how = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                if isinstance(data, Path):
                    z.write(data, name, how)
                else:
                    z.writestr(name, data, how)
    except BaseException:
        target.discard()
        raise
    target.commit()
