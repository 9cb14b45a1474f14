"""Clean XHTML for a read-along book made from Markdown, HTML or text (or from several sources): one page per
chapter, made from the blocks narrator read, each sentence in a span the book's overlay names."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ...text.document import Block

XHTML_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"'
    ' lang="{lang}" xml:lang="{lang}">\n'
)

Span = tuple[int, int, str]  # (begin, end) of a block's printed text, and the span's id


def text(value: str) -> str:
    return escape(value, quote=False)


def attribute(value: str) -> str:
    return escape(value, quote=True)


def _marked(shown: str, spans: Sequence[Span]) -> str:
    """The block's printed text with each sentence in its span; a verse line ends with a line break."""
    out, at = [], 0
    for begin, end, span_id in sorted(spans):
        out.append(text(shown[at:begin]))
        out.append(f'<span id="{span_id}">{text(shown[begin:end])}</span>')
        at = end
    out.append(text(shown[at:]))
    return "".join(out).replace("\n", "<br/>\n")


def _block(block: Block, spans: Sequence[Span]) -> str:
    shown = block.shown or block.text
    inner = _marked(shown, spans)
    if block.kind == "heading":
        level = min(6, max(1, block.level or 1))
        return f"<h{level}>{inner}</h{level}>"
    if block.kind == "scene_break":
        return f'<p class="scene-break">{inner}</p>' if shown.strip() else "<hr/>"
    if block.kind == "note":
        return f'<p class="note">{inner}</p>'
    return f"<p>{inner}</p>"


def chapter_page(
    title: str, language: str, blocks: Sequence[Block], spans: dict[int, list[Span]], stylesheet: str
) -> bytes:
    """One chapter's page: its blocks in order (``spans``: by block, its sentences' spans); its title as a
    heading when the chapter opens with none (a text book's chapter, named by its table of contents)."""
    body = [_block(b, spans.get(i, [])) for i, b in enumerate(blocks)]
    if not blocks or blocks[0].kind != "heading":
        body.insert(0, f"<h1>{text(title)}</h1>")
    return (
        XHTML_HEAD.format(lang=attribute(language))
        + f"<head>\n<title>{text(title)}</title>\n"
        + f'<link rel="stylesheet" type="text/css" href="{attribute(stylesheet)}"/>\n</head>\n'
        + '<body>\n<section epub:type="chapter">\n'
        + "\n".join(body)
        + "\n</section>\n</body>\n</html>\n"
    ).encode("utf-8")


def nav_page(title: str, language: str, entries: Sequence[tuple[str, str]]) -> bytes:
    """The navigation document: one entry per chapter, (title, href)."""
    items = "\n".join(f'<li><a href="{attribute(href)}">{text(name)}</a></li>' for name, href in entries)
    return (
        XHTML_HEAD.format(lang=attribute(language))
        + f"<head>\n<title>{text(title)}</title>\n</head>\n<body>\n"
        + f'<nav epub:type="toc" id="toc">\n<h1>{text(title)}</h1>\n<ol>\n{items}\n</ol>\n</nav>\n'
        + "</body>\n</html>\n"
    ).encode("utf-8")
