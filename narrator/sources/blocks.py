"""Turn (X)HTML into a flat list of blocks: the one extractor behind the HTML, EPUB and Markdown readers.

Skips what should never be read aloud: scripts, styles, navigation, footnote and endnote bodies,
note reference markers and page-break markers (EPUB 3 ``epub:type`` and DPUB-ARIA roles).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from ..document import Block

_BLOCK_TAGS = {
    "p", "div", "li", "blockquote", "pre", "dd", "dt", "td", "th", "figcaption", "section", "article",
    "header", "footer", "main", "body", "ul", "ol", "dl", "table", "tr", "caption", "address", "center",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_ALWAYS_SKIP = {"script", "style", "head", "nav", "aside", "template", "svg", "math", "noscript", "rt", "rp"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}
# epub:type values (EPUB 3 structural semantics) and roles (DPUB-ARIA) whose content is not narrated: the element
# and everything inside it, wherever it stands (a one-file book holds its title page, chapters and notes side by
# side in one body; a whole page of one of these is just the case where the element is <body>).
_SKIP_SEMANTICS = {
    "footnote", "footnotes", "endnote", "endnotes", "rearnote", "rearnotes", "note", "noteref",
    "pagebreak", "toc", "landmarks", "page-list", "doc-footnote", "doc-endnotes", "doc-endnote",
    "doc-noteref", "doc-pagebreak", "doc-toc", "doc-pagelist", "annoref", "biblioref",
    "cover", "titlepage", "title-page", "halftitlepage", "copyright-page", "copyright", "colophon", "imprint",
    "index", "loi", "lot", "doc-cover", "doc-colophon", "doc-index",
}  # fmt: skip
_NOTE_MARKER = re.compile(r"^\s*[\[(]?\s*(\d{1,3}|[*†‡§¶]+|[a-z])\s*[\])]?\s*$")
_SCENE_BREAK_TEXT = re.compile(r"^\s*([*#~⁂•·◆-]\s*){1,5}$")
_WS = re.compile(r"\s+")


@dataclass
class ExtractedBlocks:
    blocks: list[Block] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)  # element id -> index of the next block
    title: str | None = None  # the <title> element


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = ExtractedBlocks()
        self.text: list[str] = []
        self.heading_level = 0
        self.skip_stack: list[str] = []  # tags opened while skipping, to find where skipping ends
        self.in_title = False
        self.title_parts: list[str] = []
        self.open_links: list[bool] = []  # per open <a>: is it a note marker candidate?
        self.link_text: list[str] = []
        self.depth_at_top_section = 0

    # -- helpers -------------------------------------------------------------------------------
    def flush(self) -> None:
        text = _WS.sub(" ", "".join(self.text)).strip()
        self.text = []
        if not text:
            return
        if self.heading_level:
            self.out.blocks.append(Block("heading", text, self.heading_level))
        elif _SCENE_BREAK_TEXT.match(text):
            self.out.blocks.append(Block("scene_break"))
        else:
            self.out.blocks.append(Block("paragraph", text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if element_id := a.get("id"):  # inside skipped parts too: a link to the notes must land after the text
            self.out.anchors.setdefault(element_id, len(self.out.blocks) + (1 if self.text_pending() else 0))
        if self.skip_stack:
            if tag not in _VOID:
                self.skip_stack.append(tag)
            return
        semantics = set((a.get("epub:type", "") + " " + a.get("role", "")).split())
        if tag == "title":
            self.in_title = True
            return
        if tag in _ALWAYS_SKIP or semantics & _SKIP_SEMANTICS or "hidden" in a:
            if tag == "head":
                # the <title> inside <head> is wanted; skip the rest of head by its own tags
                return
            if tag not in _VOID:
                self.skip_stack.append(tag)
            return
        if tag == "a":
            href = a.get("href", "")
            self.open_links.append("#" in href)
            self.link_text.append("")
            return
        if tag == "br":
            self.text.append(" ")
        elif tag == "hr":
            self.flush()
            self.out.blocks.append(Block("scene_break"))
        elif tag in _HEADINGS:
            self.flush()
            self.heading_level = _HEADINGS[tag]
        elif tag in _BLOCK_TAGS:
            self.flush()

    def text_pending(self) -> bool:
        return bool("".join(self.text).strip())

    def handle_endtag(self, tag: str) -> None:
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
            is_internal = self.open_links.pop()
            text = self.link_text.pop()
            if is_internal and _NOTE_MARKER.match(text):
                # a bare note marker (<a href="#n1">1</a>, often in <sup>): drop it from the sentence
                self._drop_suffix(text)
            return
        if tag in _HEADINGS:
            self.flush()
            self.heading_level = 0
        elif tag in _BLOCK_TAGS:
            self.flush()

    def _drop_suffix(self, text: str) -> None:
        joined = "".join(self.text)
        if joined.endswith(text):
            self.text = [joined[: len(joined) - len(text)]]

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
            return
        if self.skip_stack:
            return
        self.text.append(data)
        if self.link_text:
            self.link_text[-1] += data

    def close(self) -> None:
        super().close()
        self.flush()
        title = _WS.sub(" ", "".join(self.title_parts)).strip()
        self.out.title = title or None


def extract_blocks(markup: str) -> ExtractedBlocks:
    parser = _Extractor()
    parser.feed(markup)
    parser.close()
    return parser.out


def clean_text(text: str) -> str:
    return _WS.sub(" ", text).strip()
