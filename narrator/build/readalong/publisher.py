"""A read-along book made from an EPUB keeps the publisher's XHTML byte for byte, and only adds: a span with an
id around each sentence narrator read, and a link to the stylesheet that colours the sentence being read.

The sentences are found by their words. The printed words of every clip (the chapters' blocks, as narrator
showed them) are aligned with the words of the spine's documents in order (difflib, whose "popular word"
heuristic keeps a novel's alignment near linear); text narrator did not read (a copyright page, a note's
marker, page numbers) is simply passed over. A span must not break the markup: a sentence inside one element is
wrapped whole, with the inline elements it holds (``<em>``, a note's marker); one that opens or closes at the
edge of an inline element is wrapped with that element; one that crosses anything else (a verse line's
``<div>``, a paragraph's end) is wrapped piece by piece, each piece its own span and its own share of the clip.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from rapidfuzz import fuzz

from .clips import Clip

_TOKEN = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE[^>]*>"
    r"|<(/?)([A-Za-z][\w:.-]*)((?:[^\"'>]|\"[^\"]*\"|'[^']*')*?)(/?)>",
    re.S | re.I,
)
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|\w+);")
_WORD = re.compile(r"\S+")
_ID = re.compile(r"""\bid\s*=\s*["']([^"']*)["']""")
# what a span may hold whole: phrasing elements (a sentence with an <em> in it, or a note marker's <a><sup>)
INLINE = {
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "i", "kbd", "mark", "q", "s", "samp",
    "small", "span", "strong", "sub", "sup", "time", "u", "var", "br", "wbr", "img",
}  # fmt: skip
_BLOCK_TAG = re.compile(
    r"<(?:p|div|h[1-6]|ul|ol|li|dl|dt|dd|table|tr|td|th|section|article|aside|blockquote|figure|figcaption"
    r"|header|footer|nav|pre|hr|address|main|details|summary)\b",
    re.I,
)
_UNREAD = {"head", "script", "style", "title"}
ALIKE = 60  # rapidfuzz ratio: "lighthouse" and "light" (split by markup) are alike; "notes" and "1" are not


def key(word: str) -> str:
    return re.sub(r"\W+", "", word.casefold())


@dataclass
class _Element:
    tag: str
    start: int  # where its start tag begins
    end: int = -1  # where its end tag ends
    first_word: int = -1
    last_word: int = -1


@dataclass(frozen=True)
class _Word:
    doc: int
    node: int  # the text node (index into _Document.nodes)
    begin: int  # raw offsets in the document's source
    end: int
    path: tuple[int, ...]  # the elements it is in (indexes into _Document.elements), outermost first


@dataclass
class _Document:
    source: str
    elements: list[_Element] = field(default_factory=list)
    nodes: int = 0


def _parse(doc: int, source: str, words: list[_Word]) -> _Document:
    """The document's elements, and its body's words (appended to ``words``) with where they are."""
    parsed = _Document(source)
    stack: list[int] = []
    at = 0
    for match in _TOKEN.finditer(source):
        if match.start() > at:
            _text_node(doc, parsed, source, at, match.start(), stack, words)
        at = match.end()
        closing, tag, _, empty = match.group(1, 2, 3, 4)
        if tag is None:
            continue
        tag = tag.lower().rpartition(":")[2]
        if closing:
            while stack:
                element = parsed.elements[stack.pop()]
                element.end = match.end()
                if element.tag == tag:
                    break
        else:
            parsed.elements.append(_Element(tag, match.start(), match.end() if empty else -1))
            if not empty:
                stack.append(len(parsed.elements) - 1)
    return parsed


def _text_node(
    doc: int, parsed: _Document, source: str, begin: int, end: int, stack: list[int], words: list[_Word]
) -> None:
    tags = [parsed.elements[i].tag for i in stack]
    if "body" not in tags or _UNREAD & set(tags):
        return
    node = parsed.nodes
    parsed.nodes += 1
    path = tuple(stack)
    for match in _WORD.finditer(source, begin, end):
        index = len(words)
        words.append(_Word(doc, node, match.start(), match.end(), path))
        for element in path:
            e = parsed.elements[element]
            e.first_word = index if e.first_word < 0 else e.first_word
            e.last_word = index


def _raw_key(source: str, word: _Word) -> str:
    return key(html.unescape(source[word.begin : word.end]))


@dataclass(frozen=True)
class Highlight:
    """A span the book's overlay names: in which document, its id, and its stretch of which chapter's audio."""

    doc: int
    span_id: str
    chapter: int
    start: float
    stop: float


@dataclass(frozen=True)
class Marked:
    """The documents with their spans added, and every span in reading order."""

    documents: list[bytes]
    highlights: list[Highlight]


def mark_sentences(
    sources: Sequence[str], clips: Sequence[Clip], shown: dict[tuple[int, int], str], stylesheets: Sequence[str]
) -> Marked:
    """``sources``: the spine's documents' text in order; ``shown``: each (chapter, block)'s printed text;
    ``stylesheets``: for each document, the href of the read-along stylesheet, relative to it (a document with no
    span gets no link)."""
    words: list[_Word] = []
    docs = [_parse(i, source, words) for i, source in enumerate(sources)]
    printed: list[int] = []  # each printed word's clip
    printed_keys: list[str] = []
    for n, clip in enumerate(clips):
        for match in _WORD.finditer(shown[clip.chapter, clip.block], clip.begin, clip.end):
            printed.append(n)
            printed_keys.append(key(match.group()))
    found = _align(printed_keys, [_raw_key(sources[w.doc], w) for w in words])
    ranges: dict[int, list[int]] = {}
    for i, j in enumerate(found):
        if j is not None:
            ranges.setdefault(printed[i], []).append(j)
    inserts: list[list[tuple[int, int, str]]] = [[] for _ in sources]  # (offset, 0 close / 1 open, markup)
    highlights = _highlights(docs, words, clips, ranges, inserts)
    documents = []
    for i, source in enumerate(sources):
        head = source.lower().find("</head>")
        if inserts[i] and head >= 0:
            inserts[i].append(
                (head, 0, f'<link rel="stylesheet" type="text/css" href="{html.escape(stylesheets[i])}"/>')
            )
        out, at = [], 0
        for offset, _, markup in sorted(inserts[i], key=lambda x: (x[0], x[1])):
            out += [source[at:offset], markup]
            at = offset
        out.append(source[at:])
        documents.append("".join(out).encode("utf-8"))
    return Marked(documents, highlights)


def _highlights(
    docs: list[_Document],
    words: list[_Word],
    clips: Sequence[Clip],
    ranges: dict[int, list[int]],
    inserts: list[list[tuple[int, int, str]]],
) -> list[Highlight]:
    """Each clip's spans (added to ``inserts``, by document) in reading order; a piece of a sentence wrapped piece
    by piece gets its share of the clip by its length."""
    highlights: list[Highlight] = []
    taken = [set(_ID.findall(doc.source)) for doc in docs]
    last = -1
    for n, clip in enumerate(clips):
        if n not in ranges:
            continue
        first, final = max(min(ranges[n]), last + 1), max(ranges[n])
        if first > final:
            continue  # its words were matched out of order: better no highlight than one out of place
        last = final
        pieces = _wrap(docs, words, first, final)
        total = sum(end - begin for _, begin, end in pieces) or 1
        at = clip.start
        for k, (doc, begin, end) in enumerate(pieces):
            span_id = _unique(f"nr-{n + 1}" + (f"-{k + 1}" if len(pieces) > 1 else ""), taken[doc])
            stop = clip.stop if k == len(pieces) - 1 else at + (clip.stop - clip.start) * (end - begin) / total
            inserts[doc] += [(begin, 1, f'<span id="{span_id}">'), (end, 0, "</span>")]
            highlights.append(Highlight(doc, span_id, clip.chapter, at, stop))
            at = stop
    return highlights


def _unique(span_id: str, taken: set[str]) -> str:
    while span_id in taken:
        span_id = "x" + span_id
    taken.add(span_id)
    return span_id


def _align(a: list[str], b: list[str]) -> list[int | None]:
    """For each word of ``a``, the word of ``b`` it is, or None. Between the runs difflib finds equal, a word is
    matched to a word of the other side's run in order only when the two are alike (a word split by markup, a
    different apostrophe): a heading narrator added ("Notes") is never given a note's marker."""
    found: list[int | None] = [None] * len(a)
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b).get_opcodes():
        if op == "equal":
            for i in range(i1, i2):
                found[i] = j1 + i - i1
        elif op == "replace":
            j = j1
            for i in range(i1, i2):
                alike = next((k for k in range(j, j2) if fuzz.ratio(a[i], b[k]) >= ALIKE), None)
                if alike is not None:
                    found[i], j = alike, alike + 1
    return found


def _wrap(docs: list[_Document], words: list[_Word], first: int, final: int) -> list[tuple[int, int, int]]:
    """Where the spans of the sentence from word ``first`` to ``final`` go: (document, start, end) raw offsets.
    One span when the markup allows it, else one per text node."""
    a, b = words[first], words[final]
    if a.doc == b.doc:
        doc = docs[a.doc]
        depth = 0
        while depth < min(len(a.path), len(b.path)) and a.path[depth] == b.path[depth]:
            depth += 1
        start = _lifted(doc, a, depth, lambda e: e.first_word == first, opening=True)
        end = _lifted(doc, b, depth, lambda e: e.last_word == final, opening=False)
        if start is not None and end is not None and not _BLOCK_TAG.search(doc.source, start + 1, end):
            return [(a.doc, start, end)]
    pieces: dict[tuple[int, int], tuple[int, int]] = {}
    for w in words[first : final + 1]:
        begin, _ = pieces.get((w.doc, w.node), (w.begin, w.end))
        pieces[w.doc, w.node] = (begin, w.end)
    return [(doc, begin, end) for (doc, _), (begin, end) in pieces.items()]


def _lifted(doc: _Document, word: _Word, depth: int, edge: object, *, opening: bool) -> int | None:
    """Where a span may start (or end) for a sentence whose first (last) word is ``word``: at the word itself
    when it sits in the elements both ends share, or at the edge of the inline element it opens (closes)."""
    if len(word.path) == depth:
        return word.begin if opening else word.end
    element = doc.elements[word.path[depth]]
    assert callable(edge)
    if element.tag in INLINE and edge(element) and element.end >= 0:
        return element.start if opening else element.end
    return None
