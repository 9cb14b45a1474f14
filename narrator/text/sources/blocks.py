"""Turn (X)HTML into a flat list of blocks: the one extractor behind the HTML, EPUB and Markdown readers.

Skips what should never be read aloud: scripts, styles, navigation, title and copyright pages, note reference
markers, page and line numbers (EPUB 3 ``epub:type``, DPUB-ARIA roles, the classes toolchains use). Verse is read
a stanza per block; tables row by row; numbered lists keep their numbers; footnote and endnote bodies become
``note`` blocks for notes.py to drop or place.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ..document import ReadOptions
from .structures import Frame, Frames, Table, is_line_class
from .writer import WS, BlockWriter, ExtractedBlocks

_BLOCK_TAGS = {
    "p",
    "div",
    "li",
    "blockquote",
    "pre",
    "dd",
    "dt",
    "figcaption",
    "figure",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "body",
    "ul",
    "ol",
    "dl",
    "table",
    "tr",
    "caption",
    "address",
    "center",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_ALWAYS_SKIP = {"script", "style", "head", "nav", "aside", "template", "svg", "math", "noscript", "rt", "rp"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}
# epub:type values (EPUB 3 structural semantics) and roles (DPUB-ARIA) whose content is not narrated: the element
# and everything inside it, wherever it stands (a one-file book holds its title page, chapters and notes side by
# side in one body; a whole page of one of these is just the case where the element is <body>).
_SKIP_SEMANTICS = {
    "noteref",
    "doc-noteref",
    "backlink",
    "doc-backlink",
    "annoref",
    "biblioref",
    "pagebreak",
    "doc-pagebreak",
    "toc",
    "landmarks",
    "page-list",
    "doc-toc",
    "doc-pagelist",
    "cover",
    "copyright-page",
    "copyright",
    "colophon",
    "imprint",
    "index",
    "loi",
    "lot",
    "doc-cover",
    "doc-colophon",
    "doc-index",
}
# A title page is not narrated either, but it may carry more than the title: a dedication, an epigraph. Its text
# is kept aside (ExtractedBlocks.front) to be listed as not read, or read in place with ``front_matter: read``
TITLE_PAGES = {"titlepage", "title-page", "halftitlepage"}
# Page and line numbers printed in the margin, by the classes Project Gutenberg, Calibre and others give them
_NUMBER_CLASSES = {
    "pagenum",
    "pagenumber",
    "page-number",
    "pageno",
    "page",
    "lnum",
    "linenum",
    "linenumber",
    "line-number",
    "linenr",
    "versenum",
    "marginnum",
}
_NOTE_SETS = {"footnotes", "endnotes", "rearnotes", "doc-endnotes", "doc-footnotes", "notes"}
_NOTES = {"footnote", "endnote", "rearnote", "note", "doc-footnote", "doc-endnote"}
_NOTE_CLASSES = {"footnote", "endnote"}  # Project Gutenberg's <div class="footnote">, in books without epub:type
_NOTE_SET_CLASSES = {"footnotes", "endnotes"}
# Project Gutenberg's licence header and footer, inside the first and last files of its EPUBs
_BOILERPLATE_CLASSES = {"pg-boilerplate"}
_BOILERPLATE_IDS = {"pg-header", "pg-footer", "pg-machine-header", "pg-end-separator"}
# a poem, or one of its stanzas: each is read as one block, its lines joined with a short pause
_VERSE = {
    "poem",
    "poetry",
    "verse",
    "stanza",
    "linegroup",
    "lg",
    "z3998:poem",
    "z3998:verse",
    "z3998:song",
    "z3998:hymn",
    "z3998:lyrics",
    "z3998:stanza",
}
_NOTE_MARKER = re.compile(r"^\s*[\[(]?\s*(\d{1,3}|[*†‡§¶]+|[a-z])\s*[\])]?\s*$")


class _Extractor(HTMLParser):
    def __init__(self, options: ReadOptions) -> None:
        super().__init__(convert_charrefs=True)
        self.options = options
        self.frames = Frames()  # open elements that change how text inside them is read
        self.writer = BlockWriter(options, self.frames)
        self.skip_stack: list[str] = []  # tags opened while skipping, to find where skipping ends
        self.in_title = False
        self.title_parts: list[str] = []
        self.open_links: list[str | None] = []  # per open <a>: the note it may mark (its #fragment)
        self.link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        w = self.writer
        a = {k: (v or "") for k, v in attrs}
        if element_id := a.get("id"):  # inside skipped parts too: a link to the notes must land after the text
            w.out.anchors.setdefault(element_id, len(w.out.blocks) + (1 if w.text_pending() else 0))
            note = w.frame("note")
            if note is not None:
                note.name_note(element_id)
        if self.skip_stack:
            if tag not in _VOID:
                self.skip_stack.append(tag)
            return
        semantics = set((a.get("epub:type", "") + " " + a.get("role", "")).lower().split())
        classes = set(a.get("class", "").lower().split())
        if tag == "title":
            self.in_title = True
            return
        if semantics & {"noteref", "doc-noteref"} and (target := a.get("href", "").partition("#")[2]):
            w.refs.append(target)
        if self._skipped(tag, a, semantics, classes):
            if tag not in _VOID:
                self.skip_stack.append(tag)
            return
        if semantics & TITLE_PAGES:  # kept aside (listed as not read), or read in place with front_matter: read
            w.flush()
            self.frames.append(Frame(tag, "front"))
            return
        if tag == "a":
            href = a.get("href", "")
            self.open_links.append(href.partition("#")[2] if "#" in href else None)
            self.link_text.append("")
            return
        if tag == "img":
            if self.options.images == "alt" and (alt := WS.sub(" ", a.get("alt", "")).strip()):
                w.alts.append(alt)
                if not w.text_pending():
                    w.flush()
            return
        self._open_structure(tag, a, semantics, classes)

    def _skipped(self, tag: str, a: dict[str, str], semantics: set[str], classes: set[str]) -> bool:
        if tag == "head":
            return False  # the <title> inside <head> is wanted; the rest of head goes by its own tags
        if tag in _ALWAYS_SKIP and not (tag == "aside" and semantics & (_NOTES | _NOTE_SETS)):
            return True
        if semantics & _SKIP_SEMANTICS or classes & (_NUMBER_CLASSES | _BOILERPLATE_CLASSES) or "hidden" in a:
            return True
        if a.get("id") in _BOILERPLATE_IDS:
            return True
        return tag == "figcaption" and self.options.images == "skip"

    def _open_structure(self, tag: str, a: dict[str, str], semantics: set[str], classes: set[str]) -> None:
        """Start of an element: a block boundary, and maybe a frame (verse, notes, table, list) until it ends."""
        w = self.writer
        in_verse = w.frame("verse") is not None
        in_notes = w.frame("notes") is not None and w.frame("note") is None
        if tag in ("br", "hr"):
            w.line_break(tag, in_verse)
            return
        if w.frame("cell") is not None and tag not in ("td", "th", "table"):
            w.text.append(" ")  # a cell's paragraphs and headings are one cell
            self.frames.append(Frame(tag, "in_cell"))
            return
        verse_mark = (classes | semantics) & _VERSE
        is_note = semantics & _NOTES or (classes & _NOTE_CLASSES and not semantics)
        if is_note or (in_notes and a.get("id") and tag in ("li", "aside", "div", "p", "section")):
            w.flush()
            self.frames.append(Frame(tag, "note", note_id=a.get("id", "")))
        elif semantics & _NOTE_SETS or (classes & _NOTE_SET_CLASSES and not semantics):
            w.flush()
            self.frames.append(Frame(tag, "notes"))
        elif tag in _HEADINGS:
            w.end_stanza() if in_verse else w.flush()
            w.heading_level = _HEADINGS[tag]
            self.frames.append(Frame(tag, "heading"))
        elif verse_mark and not (in_verse and verse_mark <= {"verse"}):
            # a poem or a stanza (inside a poem, a "verse" is one line): what is read so far ends, a stanza starts
            w.end_stanza() if in_verse else w.flush()
            self.frames.append(Frame(tag, "verse"))
        elif in_verse and tag == "p":
            w.end_stanza()
            self.frames.append(Frame(tag, "verse"))
        elif in_verse and (tag in _BLOCK_TAGS or is_line_class(classes)):
            w.end_line()
            self.frames.append(Frame(tag, "line"))
        elif is_line_class(classes) and tag in ("div", "p", "span"):
            if w.text_pending():  # a paragraph before the first line ends there
                w.flush()
            self.frames.append(Frame(tag, "line"))
        elif tag in ("td", "th"):
            self.frames.append(Frame(tag, "cell"))
        elif tag == "table":
            w.flush()
            self.frames.append(Frame(tag, "table", table=Table()))
        elif tag in ("ol", "ul", "li"):
            self._open_list(tag, a)
        elif tag in _BLOCK_TAGS:
            w.flush()
            self.frames.append(Frame(tag, "block"))
        else:
            self.frames.append(Frame(tag, "inline"))

    def _open_list(self, tag: str, a: dict[str, str]) -> None:
        """A list (an ordered one counts from its ``start``), or an item: numbered as a reader would say it."""
        w = self.writer
        w.flush()
        if tag != "li":
            start = int(a["start"]) - 1 if a.get("start", "").strip().isdigit() else 0
            self.frames.append(Frame(tag, "list", counter=start if tag == "ol" else -1))
            return
        listing = w.frame("list")
        if listing is not None and listing.counter >= 0 and w.frame("note") is None:
            w.prefix = f"{listing.next_number()}. "
        self.frames.append(Frame(tag, "block"))

    def handle_endtag(self, tag: str) -> None:
        w = self.writer
        if self.skip_stack:
            # close up to the matching tag (tolerates unclosed inner tags in sloppy HTML)
            if tag in self.skip_stack:
                while self.skip_stack and self.skip_stack.pop() != tag:
                    pass
            return
        if tag == "title":
            self.in_title = False
            return
        if tag == "a" and self.open_links:
            target = self.open_links.pop()
            text = self.link_text.pop()
            if target is not None and _NOTE_MARKER.match(text):
                # a bare note marker (<a href="#n1">1</a>, often in <sup>): drop it from the sentence
                w.drop_suffix(text)
                if target:
                    w.refs.append(target)
            return
        if not self.frames.has_tag(tag):
            return  # a stray end tag
        while self.frames:
            frame = self.frames.pop()
            self._close(frame)
            if frame.tag == tag:
                break

    def _close(self, frame: Frame) -> None:
        w = self.writer
        if frame.kind == "verse":
            w.end_stanza()
        elif frame.kind == "line":
            w.end_line()
        elif frame.kind == "cell":
            table = w.frame("table")
            if table is not None and table.table is not None:
                table.table.add_cell(w.take_text(), header=frame.tag == "th")
        elif frame.kind == "table" and frame.table is not None:
            for row in frame.table.spoken_rows(self.options.tables):
                w.emit("paragraph", row)
        elif frame.tag == "tr":
            table = w.frame("table")
            if table is not None and table.table is not None:
                table.table.end_row()
        elif frame.kind == "heading":
            w.flush()
            w.heading_level = 0
        elif frame.kind in ("note", "notes", "list", "block", "front"):
            w.flush()

    def handle_data(self, data: str) -> None:
        w = self.writer
        if self.in_title:
            self.title_parts.append(data)
            return
        if self.skip_stack:
            return
        w.text.append(data)
        if self.link_text:
            self.link_text[-1] += data

    def close(self) -> None:
        w = self.writer
        super().close()
        while self.frames:
            self._close(self.frames.pop())
        w.flush()
        title = WS.sub(" ", "".join(self.title_parts)).strip()
        w.out.title = title or None


def extract_blocks(markup: str, options: ReadOptions | None = None) -> ExtractedBlocks:
    parser = _Extractor(options or ReadOptions())
    parser.feed(markup)
    parser.close()
    return parser.writer.out


def clean_text(text: str) -> str:
    return WS.sub(" ", text).strip()
