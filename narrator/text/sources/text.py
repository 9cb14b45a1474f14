"""Plain text: paragraphs at blank lines; chapters at lines like ``CHAPTER IV``, ``Chapter 4``, ``IV.``."""

from __future__ import annotations

import codecs
import contextlib
import re
from pathlib import Path

from ...core.errors import SourceError
from ..document import Block, Chapter, Document, ImageText, ReadOptions, without_text
from .blocks import clean_text
from .notes import place_notes

# A chapter's number: a valid roman numeral ("IV", never "IVX"), digits, a number word ("Twelve", "Twenty-one",
# never "TwelveX") or an ordinal ("the First", as Dickens numbers his books)
_ROMAN = r"(?=[ivxlcdm])m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_WORDS = (
    rf"(?:{_UNITS}|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
    rf"|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:-(?:{_UNITS}))?|hundred)"
)
_ORDINAL = r"(?:the\s+)?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)"
_CHAPTER_LINE = re.compile(
    rf"^\s*(?:(?:chapter|part|book)\s+(?:{_ROMAN}|\d+|{_WORDS}|{_ORDINAL})(?![\w-])[.:]?.*|{_ROMAN}\.|\d{{1,3}}\.)\s*$",
    re.IGNORECASE,
)
_SCENE_BREAK = re.compile(r"^\s*([*#~⁂•·-]\s*){1,5}$")


# Byte-order marks, longest first (UTF-32's little-endian mark begins with UTF-16's)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
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


# Project Gutenberg's plain-text builds: the licence before START and after END is not the book
_PG_START = re.compile(r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$", re.IGNORECASE | re.MULTILINE)
_PG_END = re.compile(r"^\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$", re.IGNORECASE | re.MULTILINE)
# the older footer, before (or instead of) the END line: "End of Project Gutenberg's Harbour Lights, by ..." or
# "End of the Project Gutenberg EBook of ...", followed by transcribers' notes and the licence
_PG_OLD_END = re.compile(r"^\s*End of (?:the )?Project Gutenberg(?:'s|\s+E-?Book)\b.*$", re.IGNORECASE | re.MULTILINE)
_PG_FIELD = re.compile(r"^(Title|Author):\s*(.+)$", re.MULTILINE)
_ILLUSTRATION = re.compile(r"^\[Illustration(?::\s*(?P<caption>.*?))?\]$", re.IGNORECASE | re.DOTALL)
# inside a paragraph, over any number of lines
_INLINE_ILLUSTRATION = re.compile(r"\[Illustration(?::(?P<caption>[^\]]*))?\]", re.IGNORECASE)
_FOOTNOTE = re.compile(r"\[Footnote[^\]]*\]", re.IGNORECASE | re.DOTALL)
_NOTE_MARK = re.compile(r"\[(\d{1,3}|[A-Z])\]")
_FOOTNOTE_BODY = re.compile(r"\[Footnote\s+(\w{1,3})\s*:\s*(.*?)\]", re.IGNORECASE | re.DOTALL)
_ITALICS = re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])", re.DOTALL)
# Text before the first chapter line, this short, is a title page ("HARBOUR", "by Ann Writer"), not a chapter
_FRONT_MATTER_WORDS = 30
_CONTENTS = re.compile(r"^\s*(table of )?contents\.?\s*$", re.IGNORECASE)
# Typewriter quotes, as older Gutenberg texts set them (Alice's Millennium Fulcrum edition: `Oh dear!'): a
# backtick opens a quotation, two backticks open a double one that two apostrophes close
_CLOSING_BACKTICK = re.compile(r"[\w.,;:!?]`")
_BACKTICK_DOUBLE = re.compile(r"``((?:(?!\n\s*\n).)*?)''", re.DOTALL)


def _typeset_quotes(raw: str) -> str:
    """Backtick quotes as the curly quotes they stand for: a voice never reads a backtick, and the cast finds the
    quotation it opens. Only in a text whose backticks all open (never ``touch pwned`` in backticks)."""
    if "`" not in raw or _CLOSING_BACKTICK.search(raw):  # `code` quoted with backticks both sides: left alone
        return raw
    return _BACKTICK_DOUBLE.sub("\u201c\\1\u201d", raw).replace("`", "\u2018")


def _gutenberg(raw: str) -> tuple[str, str | None, str | None]:
    """The book between Project Gutenberg's START and END lines, with the title and author its header gives."""
    start, end = _PG_START.search(raw), _PG_END.search(raw)
    fields = dict(_PG_FIELD.findall(raw[: start.start()])) if start else {}
    body = raw[start.end() : end.start() if end and end.start() > start.end() else len(raw)] if start else raw
    if old_end := _PG_OLD_END.search(body):
        body = body[: old_end.start()]
    return body, fields.get("Title", "").strip() or None, fields.get("Author", "").strip() or None


def _for_the_ear(para: str, images: ImageText) -> tuple[str | None, list[str]]:
    """A paragraph as it is read, and the captions of the illustrations in it, to read after it. The markup
    ``[Illustration: ...]`` is never read; its caption is, unless the job says ``images: skip``. Footnotes and
    their markers go, and the underscores of _italics_. None when nothing is left to read."""
    para = _FOOTNOTE.sub("", para).strip()
    captions: list[str] = []
    if illustration := _ILLUSTRATION.match(para):  # an illustration alone: its caption is the paragraph
        captions = [illustration.group("caption") or ""]
        para = ""
    else:
        captions = [m.group("caption") or "" for m in _INLINE_ILLUSTRATION.finditer(para)]
        para = _INLINE_ILLUSTRATION.sub(" ", para)
    para = _ITALICS.sub(r"\1", _NOTE_MARK.sub("", para)).strip()
    if images == "skip":
        captions = []
    said = [clean_text(_ITALICS.sub(r"\1", c)) for c in captions]
    return para or None, [c for c in said if c]


def _paragraph_blocks(para: str, scope: int, images: ImageText) -> list[Block]:
    """A paragraph's blocks: its text as read, with the notes its markers point to (``[1]``), its illustrations'
    captions, and the bodies of any ``[Footnote 1: ...]`` in it as note blocks (notes.py drops or places them).
    Gutenberg numbers notes per chapter or per book: ``scope`` (the chapter) keeps two chapters' note 1 apart."""
    blocks: list[Block] = []
    refs = tuple(f"{scope}:{label}" for label in _NOTE_MARK.findall(_FOOTNOTE.sub("", para)))
    text, captions = _for_the_ear(para, images)
    if text:
        blocks.append(Block("paragraph", clean_text(text), refs=refs))
    blocks += [Block("paragraph", caption) for caption in captions]
    for note in _FOOTNOTE_BODY.finditer(para):
        if body := clean_text(_ITALICS.sub(r"\1", note.group(2))):
            blocks.append(Block("note", body, note=f"{scope}:{note.group(1)}"))
    return blocks


def _is_subtitle(lines: list[str]) -> bool:
    """A chapter's title set as its own paragraph under the chapter line, as Project Gutenberg's texts do: one
    short line in capitals ("THE HARBOUR."), or of two to eight words in title case ("The Harbour Lights")."""
    if len(lines) != 1 or len(lines[0]) > 60:
        return False
    text = lines[0].rstrip(".")
    words = text.split()
    if not words or len(words) > 8 or text.endswith((",", ";", "!", "?", '"', "'")):
        return False
    if text.isupper():
        return True
    return len(words) >= 2 and all(w[0].isupper() for w in words if len(w) > 3 and w[0].isalpha())


def _is_contents(lines: list[str]) -> bool:
    """A table of contents: a "Contents" line, or a run of chapter lines with no text between them."""
    if len(lines) == 1 and _CONTENTS.match(lines[0]):
        return True
    chapter_lines = sum(1 for line in lines if _CHAPTER_LINE.match(line))
    return chapter_lines == len(lines) >= 2 or (len(lines) >= 3 and chapter_lines * 2 >= len(lines))


def _chapter_heading(lines: list[str]) -> tuple[str, list[str]]:
    """A chapter line's heading (with a subtitle line right under it), and the lines after it."""
    heading = clean_text(lines[0]).rstrip(".")
    rest = lines[1:]
    if rest and len(rest[0]) <= 80:
        heading = f"{heading}: {clean_text(rest[0])}"
        rest = rest[1:]
    return heading, rest


def _not_read(front: list[Block], contents: bool, empty: list[str]) -> tuple[str, ...]:
    """What the reader left out, for report.json's not_read: a title page, a contents list, empty chapters."""
    dropped: list[str] = []
    if front:
        said = " / ".join(b.text for b in front if b.kind == "paragraph")
        dropped.append(f"before the first chapter (a title page?): {said[:60]}")
    return tuple(dropped + (["a table of contents"] if contents else []) + list(without_text(empty)))


def read_text(path: Path, options: ReadOptions | None = None) -> Document:
    options = options or ReadOptions()
    raw = decode_text(path.read_bytes(), path).replace("\r\n", "\n").replace("\r", "\n")
    raw, pg_title, pg_author = _gutenberg(_typeset_quotes(raw))
    paragraphs = [p for p in re.split(r"\n\s*\n", raw) if p.strip()]
    chapters: list[Chapter] = []
    title: str | None = None
    blocks: list[Block] = []
    empty: list[str] = []
    front: list[Block] = []  # a title page's lines before the first chapter line
    contents = False
    subtitle_next = False  # a chapter line alone: the paragraph after it may be its subtitle

    def close() -> None:  # a "chapter" with no text (a line of a table of contents) is no chapter
        words = sum(len(b.text.split()) for b in blocks if b.kind == "paragraph")
        if title is None and 0 < words <= _FRONT_MATTER_WORDS:
            front.extend(blocks)
        elif words:
            chapters.append(Chapter(title or path.stem, tuple(blocks)))
        elif title is not None:
            empty.append(title)

    for para in paragraphs:
        lines = [line.strip() for line in para.strip().split("\n")]
        if _is_contents(lines):
            contents = True
            continue
        if subtitle_next and title is not None and _is_subtitle(lines):  # "CHAPTER I." then "THE HARBOUR."
            title = f"{title}: {clean_text(lines[0]).rstrip('.')}"
            blocks[0] = Block("heading", title, 1)
            subtitle_next = False
            continue
        subtitle_next = False
        if _CHAPTER_LINE.match(lines[0]) and len(lines[0]) <= 80:
            close()
            heading, rest = _chapter_heading(lines)
            title, blocks = heading, [Block("heading", heading, 1)]
            if rest:
                blocks += _paragraph_blocks(" ".join(rest), len(chapters), options.images)
            subtitle_next = not rest and ":" not in heading
        elif _SCENE_BREAK.match(para):
            blocks.append(Block("scene_break"))
        else:
            blocks += _paragraph_blocks(para, len(chapters), options.images)
    close()
    if front and not chapters:  # a short text with no chapter lines at all: it is the text
        chapters, front = [Chapter(path.stem, tuple(front))], []
    doc_title = pg_title or path.stem.replace("_", " ").replace("-", " ").strip().title()
    doc = Document(doc_title, tuple(chapters), pg_author, dropped=_not_read(front, contents, empty))
    return place_notes(doc, options.notes)
