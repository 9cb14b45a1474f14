"""Build real EPUB 2 and EPUB 3 files, deterministically (same input, same bytes)."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

FIXED_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Page:
    name: str  # file name inside OEBPS/
    body: str  # XHTML inside <body>
    title: str = ""
    epub_type: str | None = None  # on <body>, e.g. "frontmatter copyright-page"
    linear: bool = True
    in_spine: bool = True
    prefix: str = ""  # epub:prefix on <html>: vocabularies beyond EPUB's own (Standard Ebooks' z3998)


@dataclass(frozen=True)
class NavPoint:
    title: str
    href: str  # "ch1.xhtml#part2"
    children: Sequence[NavPoint] = field(default_factory=tuple)


def _xhtml(page: Page) -> str:
    body_type = f' epub:type="{page.epub_type}"' if page.epub_type else ""
    prefix = f' epub:prefix="{page.prefix}"' if page.prefix else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"{prefix}>\n'
        f"<head><title>{escape(page.title)}</title></head>\n<body{body_type}>\n{page.body}\n</body>\n</html>\n"
    )


def _nav_ol(points: Sequence[NavPoint]) -> str:
    items = []
    for p in points:
        sub = _nav_ol(p.children) if p.children else ""
        items.append(f'<li><a href="{escape(p.href)}">{escape(p.title)}</a>{sub}</li>')
    return "<ol>" + "".join(items) + "</ol>"


def _ncx_points(points: Sequence[NavPoint], counter: list[int]) -> str:
    out = []
    for p in points:
        counter[0] += 1
        n = counter[0]
        sub = _ncx_points(p.children, counter)
        out.append(
            f'<navPoint id="np{n}" playOrder="{n}"><navLabel><text>{escape(p.title)}</text></navLabel>'
            f'<content src="{escape(p.href)}"/>{sub}</navPoint>'
        )
    return "".join(out)


def build_epub(
    path: Path,
    *,
    title: str,
    author: str,
    pages: Sequence[Page],
    toc: Sequence[NavPoint],
    version: int = 3,
    cover: bytes | None = None,
    landmarks: dict[str, str] | None = None,  # epub:type / guide type -> href
    language: str = "en",
    identifier: str = "urn:uuid:00000000-0000-4000-8000-000000000000",
) -> Path:
    """Write an EPUB. The manifest lists files sorted by name; the spine follows ``pages`` order, so
    tests can make reading order differ from file-name order."""
    files: dict[str, bytes] = {}
    manifest: list[str] = []
    spine: list[str] = []
    for page in pages:
        files[f"OEBPS/{page.name}"] = _xhtml(page).encode("utf-8")
    for i, page in sorted(enumerate(pages), key=lambda p: p[1].name):
        manifest.append(f'<item id="p{i}" href="{page.name}" media-type="application/xhtml+xml"/>')
    for i, page in enumerate(pages):
        if page.in_spine:
            linear = "" if page.linear else ' linear="no"'
            spine.append(f'<itemref idref="p{i}"{linear}/>')
    cover_meta = ""
    if cover is not None:
        ext, media = ("png", "image/png") if cover.startswith(b"\x89PNG") else ("jpg", "image/jpeg")
        files[f"OEBPS/images/cover.{ext}"] = cover
        props = ' properties="cover-image"' if version == 3 else ""
        manifest.append(f'<item id="cover-img" href="images/cover.{ext}" media-type="{media}"{props}/>')
        cover_meta = '<meta name="cover" content="cover-img"/>'
    # EPUB 3 requires the last modification's date (EPUBCheck RSC-005 without it); fixed, for the same bytes
    modified = '<meta property="dcterms:modified">2020-01-01T00:00:00Z</meta>' if version == 3 else ""
    package_version, spine_attr, guide = _navigation(files, manifest, version, title, identifier, toc, landmarks or {})
    opf = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<package xmlns="http://www.idpf.org/2007/opf" version="{package_version}" unique-identifier="uid">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:identifier id="uid">{identifier}</dc:identifier><dc:title>{escape(title)}</dc:title>'
        f"<dc:creator>{escape(author)}</dc:creator><dc:language>{language}</dc:language>{cover_meta}{modified}"
        f"</metadata><manifest>{''.join(manifest)}</manifest>"
        f"<spine{spine_attr}>{''.join(spine)}</spine>{guide}</package>\n"
    )
    files["OEBPS/content.opf"] = opf.encode("utf-8")
    container = (
        '<?xml version="1.0"?>\n<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>\n"
    )
    files["META-INF/container.xml"] = container.encode("utf-8")
    return _write_zip(path, files)


def _navigation(files: dict[str, bytes], manifest: list[str], version: int, title: str, identifier: str,
                toc: Sequence[NavPoint], landmarks: dict[str, str]) -> tuple[str, str, str]:  # fmt: skip
    """The navigation document (EPUB 3 nav, or EPUB 2 NCX and guide), added to ``files`` and ``manifest``:
    (package version, spine attributes, guide element)."""
    if version == 3:
        marks = "".join(f'<li><a epub:type="{t}" href="{escape(h)}">{t}</a></li>' for t, h in landmarks.items())
        nav_body = f'<nav epub:type="toc" id="toc"><h1>Contents</h1>{_nav_ol(toc)}</nav>'
        if marks:
            nav_body += f'<nav epub:type="landmarks"><ol>{marks}</ol></nav>'
        files["OEBPS/nav.xhtml"] = _xhtml(Page("nav.xhtml", nav_body, "Contents")).encode("utf-8")
        manifest.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>')
        return "3.0", "", ""
    ncx = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
        f'<head><meta name="dtb:uid" content="{identifier}"/></head>'
        f"<docTitle><text>{escape(title)}</text></docTitle>"
        f"<navMap>{_ncx_points(toc, [0])}</navMap></ncx>\n"
    )
    files["OEBPS/toc.ncx"] = ncx.encode("utf-8")
    manifest.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
    refs = "".join(f'<reference type="{t}" title="{t}" href="{escape(h)}"/>' for t, h in landmarks.items())
    return "2.0", ' toc="ncx"', f"<guide>{refs}</guide>" if refs else ""


def _write_zip(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        # the mimetype entry comes first and uncompressed, as OCF requires
        z.writestr(zipfile.ZipInfo("mimetype", FIXED_TIME), b"application/epub+zip", zipfile.ZIP_STORED)
        for name in sorted(files):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[name])
    return path
