"""Markdown: rendered by markdown-it (CommonMark), then read as HTML; chapters at its headings (html.py)."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

from ..document import Document, ReadOptions
from .blocks import extract_blocks
from .html import split_chapters
from .notes import place_notes
from .text import decode_text

_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)
# a paragraph set in lines by hard line breaks (two trailing spaces, or a backslash): a poem's stanza, a song, an
# address. Read as verse: each line kept for the eye (subtitles, the read-along book), a short pause at its end
_LINES = re.compile(r"<p>((?:(?!</p>).)*?<br\s*/?>(?:(?!</p>).)*)</p>", re.DOTALL)


def read_markdown(path: Path, options: ReadOptions | None = None) -> Document:
    options = options or ReadOptions()
    source = decode_text(path.read_bytes(), path).replace("\r\n", "\n")
    source = _FRONT_MATTER.sub("", source)
    # html=True: raw HTML inside Markdown goes through the same extractor (tags dropped, scripts skipped)
    rendered = MarkdownIt("commonmark", {"html": True}).render(source)
    rendered = _LINES.sub(r'<p class="stanza">\1</p>', rendered)
    blocks = extract_blocks(rendered, options).blocks
    first_h1 = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), None)
    file_title = path.stem.replace("_", " ").replace("-", " ").title()
    # text before the first heading is a chapter named after the file, not after the next heading
    chapters = tuple(split_chapters(blocks, file_title, options.split_at))
    return place_notes(Document(title=first_h1 or file_title, chapters=chapters), options.notes)
