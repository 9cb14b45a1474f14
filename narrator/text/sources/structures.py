"""The pieces of a page read other than as paragraphs: verse lines and stanzas, tables row by row."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ..document import TableReading

# classes toolchains give one line of verse: "line", "verse-line"; Project Gutenberg's indents "i0".."i9"
_LINE_CLASS = re.compile(r"^(?:line|verse-line|l|i\d{1,2}|indent\d{0,2})$")
# a number printed in the margin at a line's end: "Son of man, 20" (a line that is only a number is kept)
_MARGIN_NUMBER = re.compile(r"(?<=\S)\s+\d{1,5}$")


@dataclass
class Table:
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    row: list[tuple[str, bool]] = field(default_factory=list)

    def add_cell(self, text: str, *, header: bool) -> None:
        self.row.append((text, header))

    def end_row(self) -> None:
        cells, self.row = self.row, []
        if not cells:
            return
        if not self.header and not self.rows and all(is_header for _, is_header in cells):
            self.header = [text for text, _ in cells]
        else:
            self.rows.append([text for text, _ in cells])

    def spoken_rows(self, reading: TableReading) -> list[str]:
        """One sentence per row, each cell after its column's header ("Year: 1850; Ships: 12."); or, to skip
        the table, one line that says a table was here."""
        self.end_row()
        if reading == "skip":
            return [f"A table of {len(self.rows)} rows is not read."] if self.rows or self.header else []
        spoken = []
        for row in self.rows:
            parts = [
                f"{self.header[i]}: {cell}" if i < len(self.header) and self.header[i] else cell
                for i, cell in enumerate(row)
                if cell
            ]
            if parts:
                text = "; ".join(parts)
                spoken.append(text if text[-1] in ".!?" else text + ".")
        return spoken


@dataclass
class Frame:
    """An open element that changes how the text inside it is read."""

    tag: str
    kind: str  # verse, line, note, notes, table, cell, in_cell, list, block, heading, inline
    note_id: str = ""
    counter: int = 0  # a list's last item number; -1 for a list without numbers
    table: Table | None = None

    def next_number(self) -> int:
        """A numbered list's next item number."""
        self.counter += 1
        return self.counter

    def name_note(self, note_id: str) -> None:
        """A note whose id is on an element inside it (``<div class="footnote"><p><a id="Footnote_1">``)."""
        self.note_id = self.note_id or note_id


class Frames:
    """The open frames, innermost last, counted by tag and kind: asking for a kind or tag that is not open costs
    nothing, where a scan of the stack made an HTML file nested 40 000 elements deep take minutes to read (every
    start and end tag scanned every open one)."""

    def __init__(self) -> None:
        self._stack: list[Frame] = []
        self._tags: Counter[str] = Counter()
        self._kinds: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self._stack)

    def append(self, frame: Frame) -> None:
        self._stack.append(frame)
        self._tags[frame.tag] += 1
        self._kinds[frame.kind] += 1

    def pop(self) -> Frame:
        frame = self._stack.pop()
        self._tags[frame.tag] -= 1
        self._kinds[frame.kind] -= 1
        return frame

    def has_tag(self, tag: str) -> bool:
        return self._tags[tag] > 0

    def innermost(self, kind: str) -> Frame | None:
        if not self._kinds[kind]:
            return None
        return next(f for f in reversed(self._stack) if f.kind == kind)


def is_line_class(classes: set[str]) -> bool:
    return any(_LINE_CLASS.match(c) for c in classes)


def verse_line(text: str) -> str:
    return _MARGIN_NUMBER.sub("", text).strip()


def stanza_text(lines: list[str]) -> str:
    """A stanza's lines as one passage: a line that ends without punctuation gets a comma, so the voice pauses
    briefly where the line ends, as a reader of verse does."""
    spoken = [line if line[-1] in ".,;:!?-—–'\")]…" else line + "," for line in lines[:-1]]
    return " ".join([*spoken, lines[-1]])
