"""An EPUB's zip, read with care: every member's size checked as it unpacks (a zip bomb stops at the cap), XML
parsed with defusedxml (no external entities, no network), and the package document found by the container."""

from __future__ import annotations

import posixpath
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ...core.errors import SourceError

NS = {
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
    "ncx": "http://www.daisy.org/z3986/2005/ncx/",
    "xhtml": "http://www.w3.org/1999/xhtml",
    "container": "urn:oasis:names:tc:opendocument:xmlns:container",
    "epub": "http://www.idpf.org/2007/ops",
}
MAX_MEMBER_BYTES = 64 * 1024 * 1024


class EpubZip:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(f"{path}: not an EPUB (not a readable zip file: {exc})") from None
        self.names = set(self.zip.namelist())

    def read(self, name: str) -> bytes:
        try:
            info = self.zip.getinfo(name)
        except KeyError:
            raise SourceError(f"{self.path}: {name} is named by the book but missing from it") from None
        if info.file_size > MAX_MEMBER_BYTES:
            raise SourceError(f"{self.path}: {name} is implausibly large ({info.file_size} bytes)")
        # the header's size may lie (a zip bomb): count what actually comes out, and stop at the cap
        try:
            with self.zip.open(info) as member:
                data = member.read(MAX_MEMBER_BYTES + 1)
        except RuntimeError as exc:  # zipfile's word for an encrypted member
            raise SourceError(f"{self.path}: {name}: cannot be read ({exc}); DRM or a password?") from None
        except NotImplementedError as exc:
            raise SourceError(f"{self.path}: {name}: {exc}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise SourceError(f"{self.path}: {name}: damaged in the zip ({exc})") from None
        if len(data) > MAX_MEMBER_BYTES:
            raise SourceError(
                f"{self.path}: {name} unpacks to more than its header says (over {MAX_MEMBER_BYTES} bytes)"
            )
        return data

    def xml(self, name: str) -> Element:
        try:
            return SafeET.fromstring(self.read(name))
        except DefusedXmlException as exc:
            raise SourceError(f"{self.path}: {name}: refused unsafe XML ({exc})") from None
        except SafeET.ParseError as exc:
            raise SourceError(f"{self.path}: {name}: malformed XML ({exc})") from None


def resolve(base_dir: str, href: str) -> tuple[str, str | None]:
    href, _, fragment = href.partition("#")
    path = posixpath.normpath(posixpath.join(base_dir, unquote(href))) if href else ""
    return path.lstrip("/"), (unquote(fragment) or None)


def package_path(book: EpubZip, path: Path) -> str:
    """Where the package document is, by META-INF/container.xml."""
    container = book.xml("META-INF/container.xml")
    rootfile = container.find(".//container:rootfile", NS)
    if rootfile is None or not rootfile.get("full-path"):
        raise SourceError(f"{path}: META-INF/container.xml names no package document")
    return rootfile.get("full-path", "")


@dataclass(frozen=True)
class Package:
    """What a read-along book made from an EPUB keeps of it: its package document and every member, and the
    spine's XHTML documents in reading order (zip member names)."""

    opf_path: str
    version: str
    spine: tuple[str, ...]
    members: dict[str, bytes]


def read_package(path: Path) -> Package:
    """The EPUB's package and members, as they are (for the read-along book, which adds to them)."""
    book = EpubZip(path)
    opf_path = package_path(book, path)
    opf = book.xml(opf_path)
    opf_dir = posixpath.dirname(opf_path)
    hrefs = {
        item.get("id", ""): resolve(opf_dir, item.get("href", ""))[0]
        for item in opf.iterfind("opf:manifest/opf:item", NS)
        if item.get("media-type") == "application/xhtml+xml"
    }
    spine_el = opf.find("opf:spine", NS)
    refs = [] if spine_el is None else list(spine_el.iterfind("opf:itemref", NS))
    spine = tuple(hrefs[r.get("idref", "")] for r in refs if r.get("idref", "") in hrefs)
    members = {name: book.read(name) for name in sorted(book.names) if not name.endswith("/")}
    return Package(opf_path, opf.get("version", ""), spine, members)
