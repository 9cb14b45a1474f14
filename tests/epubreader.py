"""A read-along EPUB as a reading system sees it: the container names the package, the package the pages and
their overlays, an overlay's pars name a span of a page and a clip of an audio file. Parsed with the standard
library's XML parser (an XHTML page that is not well-formed fails here, as in a reader)."""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree as ET

OPF = "{http://www.idpf.org/2007/opf}"
SMIL = "{http://www.w3.org/ns/SMIL}"
XHTML = "{http://www.w3.org/1999/xhtml}"


def clock_seconds(value: str) -> float:
    """A SMIL clock value: full (h:mm:ss.fff), partial (mm:ss.fff) or a timecount (12.5s, 300ms, 1.2h)."""
    value = value.strip()
    if ":" in value:
        parts = [float(p) for p in value.split(":")]
        return sum(p * 60**i for i, p in enumerate(reversed(parts)))
    match = re.fullmatch(r"([\d.]+)(h|min|s|ms)?", value)
    assert match, value
    scale = {"h": 3600, "min": 60, "s": 1, "ms": 0.001, None: 1}[match.group(2)]
    return float(match.group(1)) * scale


@dataclass(frozen=True)
class Par:
    page: str  # zip member
    span_id: str
    audio: str  # zip member
    begin: float
    end: float


class ReadAlongBook:
    def __init__(self, path: Path):
        self.zip = zipfile.ZipFile(path)
        container = ET.fromstring(self.zip.read("META-INF/container.xml"))
        self.opf_path = next(e.get("full-path") for e in container.iter() if e.get("full-path"))
        self.opf = ET.fromstring(self.zip.read(self.opf_path))
        base = posixpath.dirname(self.opf_path)
        self.items = {
            item.get("id"): (posixpath.normpath(posixpath.join(base, unquote(item.get("href")))), item)
            for item in self.opf.iter(f"{OPF}item")
        }
        self.spine = [self.items[ref.get("idref")][0] for ref in self.opf.iter(f"{OPF}itemref")]

    def meta(self, prop: str) -> list[tuple[str | None, str]]:
        return [(m.get("refines"), m.text or "") for m in self.opf.iter(f"{OPF}meta") if m.get("property") == prop]

    def pars(self) -> list[Par]:
        """Every par of every overlay, pages in spine order: what a reader plays from the start."""
        out = []
        overlays = {path: item.get("media-overlay") for path, item in self.items.values() if item.get("media-overlay")}
        for page in self.spine:
            if page not in overlays:
                continue
            smil_path = self.items[overlays[page]][0]
            here = posixpath.dirname(smil_path)
            for par in ET.fromstring(self.zip.read(smil_path)).iter(f"{SMIL}par"):
                text, audio = par.find(f"{SMIL}text"), par.find(f"{SMIL}audio")
                src, _, fragment = text.get("src").partition("#")
                assert posixpath.normpath(posixpath.join(here, src)) == page
                out.append(
                    Par(
                        page,
                        fragment,
                        posixpath.normpath(posixpath.join(here, audio.get("src"))),
                        clock_seconds(audio.get("clipBegin")),
                        clock_seconds(audio.get("clipEnd")),
                    )
                )
        return out

    def span_text(self, page: str, span_id: str) -> str:
        root = ET.fromstring(self.zip.read(page))
        element = next(e for e in root.iter() if e.get("id") == span_id)
        return "".join(element.itertext())

    def extract(self, member: str, folder: Path) -> Path:
        dest = folder / member.replace("/", "_")
        dest.write_bytes(self.zip.read(member))
        return dest


_OUR_SPAN = re.compile(r'<span id="(?:x*)nr-[\d-]+">')


def without_spans(xhtml: str) -> str:
    """A page of a read-along book made from an EPUB, with what narrator added taken out again: its spans (each
    opening tag and the closing tag that matches it) and the stylesheet link."""
    xhtml = re.sub(r'<link rel="stylesheet" type="text/css" href="[^"]*narrator/readalong\.css"/>', "", xhtml)
    out, stack, at = [], [], 0
    for tag in re.finditer(r"<(/?)span\b[^>]*>", xhtml):
        closing = tag.group(1) == "/"
        ours = not closing and _OUR_SPAN.fullmatch(tag.group()) is not None
        if not closing:
            stack.append(ours)
        drop = ours or (closing and stack.pop())
        if drop:
            out.append(xhtml[at : tag.start()])
            at = tag.end()
    out.append(xhtml[at:])
    return "".join(out)
