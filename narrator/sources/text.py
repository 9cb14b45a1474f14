"""Plain text: paragraphs at blank lines; chapters at lines like ``CHAPTER IV``, ``Chapter 4``, ``IV.``."""

from __future__ import annotations

import codecs
import contextlib
import re
from pathlib import Path

from ..document import Block, Chapter, Document
from ..errors import SourceError
from .blocks import clean_text

_CHAPTER_LINE = re.compile(
    r"^\s*(?:(?:chapter|part|book)\s+(?:[ivxlcdm]+|\d+|[a-z]+(?:-[a-z]+)?)\b[.:]?.*|[IVXLCDM]+\.|\d{1,3}\.)\s*$",
    re.IGNORECASE,
)
_SCENE_BREAK = re.compile(r"^\s*([*#~⁂•·-]\s*){1,5}$")


# Byte-order marks, longest first (UTF-32's little-endian mark begins with UTF-16's)
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # not tab, newline, form feed, carriage return


def decode_text(data: bytes, path: Path) -> str:
    """Text by its byte-order mark (UTF-8, 16 or 32), else UTF-8, else cp1252 (older Windows files); a file
    that is none of these (NUL bytes, many control characters: a binary file under a text name) is refused."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise SourceError(
                    f"{path}: not valid {encoding.upper()} text after its byte-order mark: {exc}"
                ) from None
    if b"\x00" in data[:4096] and data[1:4096:2].count(0) > len(data[:4096]) // 4:
        # UTF-16 without a mark: every other byte of ASCII text is NUL
        zeros_odd = data[1:4096:2].count(0) > data[0:4096:2].count(0)
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("utf-16-le" if zeros_odd else "utf-16-be")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    sample = text[:4096]
    # a stray NUL or escape is removed before synthesis (prepare.py); a file full of them is not text
    if sample and (
        len(_CONTROL.findall(sample)) > len(sample) // 20 + 2 or sample.count("\ufffd") > len(sample) // 20 + 1
    ):
        raise SourceError(f"{path}: does not look like text (binary data?); give the right format or file")
    return text


def read_text(path: Path) -> Document:
    raw = decode_text(path.read_bytes(), path).replace("\r\n", "\n").replace("\r", "\n")
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
