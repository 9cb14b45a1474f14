"""The blocks an extraction writes (blocks.py reads the markup): the paragraph, heading or stanza read so far, and
where it goes when it ends (the book, a note, the front matter kept aside), by the frames open around it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..document import Block, ReadOptions
from .structures import Frame, Frames, stanza_text, verse_line

SCENE_BREAK_TEXT = re.compile(r"^\s*([*#~⁂•·◆-]\s*){1,5}$")
WS = re.compile(r"\s+")


@dataclass
class ExtractedBlocks:
    blocks: list[Block] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)  # element id -> index of the next block
    title: str | None = None  # the <title> element
    front: list[Block] = field(default_factory=list)  # a title page's text, not read (front_matter: skip)


class BlockWriter:
    """The blocks being written: the paragraph, heading or stanza read so far, and where it goes (the book, a
    note, the front matter kept aside) by the frames open around it."""

    def __init__(self, options: ReadOptions, frames: Frames) -> None:
        self.options = options
        self.frames = frames
        self.out = ExtractedBlocks()
        self.text: list[str] = []
        self.heading_level = 0
        self.lines: list[str] = []  # verse lines waiting to become a stanza
        self.refs: list[str] = []  # note markers met in the paragraph being read
        self.prefix = ""  # a numbered list item's number, for its first paragraph
        self.alts: list[str] = []  # images' alt text met inside a paragraph, read after it

    def frame(self, kind: str) -> Frame | None:
        return self.frames.innermost(kind)

    def emit(self, kind: str, text: str, shown: str = "") -> None:
        note = self.frame("note")
        if self.frame("front") is not None and self.options.front_matter == "skip":
            self.out.front.append(Block("heading" if kind == "heading" else "paragraph", text, shown=shown))
        elif note is not None:
            self.out.blocks.append(Block("note", text, note=note.note_id, shown=shown))
        elif self.frame("notes") is not None:
            return  # a notes section's own heading or text ("Endnotes"): not a note, not the book
        elif kind == "heading":
            self.out.blocks.append(Block("heading", text, self.heading_level))
        else:
            shown = shown and self.prefix + shown
            self.out.blocks.append(Block("paragraph", self.prefix + text, refs=tuple(self.refs), shown=shown))
            self.prefix, self.refs = "", []

    def take_text(self) -> str:
        text = WS.sub(" ", "".join(self.text)).strip()
        self.text = []
        return text

    def end_line(self) -> None:
        if line := verse_line(self.take_text()):
            self.lines.append(line)

    def end_stanza(self) -> None:
        self.end_line()
        if self.lines:
            self.emit("paragraph", stanza_text(self.lines), "\n".join(self.lines))
            self.lines = []

    def flush(self) -> None:
        if self.frame("verse") is not None and not self.heading_level:
            self.end_line()
            return
        text = self.take_text()
        if self.lines:  # lines set one per element outside any poem container: they end here
            self.lines, lines = [], self.lines
            self.emit("paragraph", stanza_text(lines), "\n".join(lines))
        if not text:
            pass
        elif self.heading_level:
            self.emit("heading", text)
        elif SCENE_BREAK_TEXT.match(text):
            if self.frame("note") is None and self.frame("notes") is None:
                self.out.blocks.append(Block("scene_break"))
        else:
            self.emit("paragraph", text)
        self.alts, alts = [], self.alts
        for alt in alts:
            self.emit("paragraph", alt)

    def text_pending(self) -> bool:
        return bool("".join(self.text).strip())

    def line_break(self, tag: str, in_verse: bool) -> None:
        """<br> ends a line of verse (elsewhere it is a space); <hr> is a scene break."""
        if tag == "br":
            self.end_line() if in_verse else self.text.append(" ")
            return
        self.end_stanza() if in_verse else self.flush()
        if self.frame("notes") is None and self.frame("note") is None:
            self.out.blocks.append(Block("scene_break"))

    def drop_suffix(self, text: str) -> None:
        joined = "".join(self.text)
        if joined.endswith(text):
            self.text = [joined[: len(joined) - len(text)]]
