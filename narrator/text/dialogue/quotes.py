"""Quotations in a chapter's paragraphs (prepared text: quotes already straight), each with its parts.

What counts: double quotes; single quotes where a book uses them for speech (an opening one after a space, before a
letter; a closing one after the speech's punctuation), never an apostrophe (``don't``, ``the Bennets'``); a
quotation broken by its tag (``"Yes," said she, "I do."``: one quotation in two parts, the tag between them
narration); a speech over several paragraphs (a paragraph that opens a quote and never closes it runs on into the
next, which opens again); em-dash dialogue (a paragraph opening with a dash: the speech runs to the next dash after
a space, and again after the tag). A quotation inside another is part of it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..document import Block

Span = tuple[int, int]  # characters of the paragraph's text, quote marks included

# The verbs of a speech tag: they close a quotation ("'...sir' said Alice") and name its speaker (attribution.py)
SPEECH_VERBS = frozenset(
    "said says say replied replies answered answers asked asks cried cries returned continued added observed "
    "exclaimed whispered shouted muttered murmured remarked rejoined repeated began called protested insisted "
    "admitted agreed explained declared interrupted laughed sighed inquired enquired resumed retorted responded "
    "demanded pleaded begged urged warned suggested stammered snapped growled groaned gasped breathed persisted "
    "objected conceded concluded ventured hazarded thought wondered told yelled screamed answered spoke read "
    "saying asking adding remarking muttering whispering crying calling replying exclaiming".split()
)
SPEECH_VERB = r"\b(?:" + "|".join(sorted(SPEECH_VERBS)) + r"|went on)\b"
_TAG_VERB = re.compile(r"\s+" + SPEECH_VERB)

_OPEN_BEFORE = set(" \t\n([{—–-/") | {""}
_SPEECH_END = set(",.!?;:—–-…")
_CLOSE_AFTER = _SPEECH_END | {'"'}  # 'the earls of Mercia--"': a quotation inside closes first
_OPEN_AFTER = set('-—–…"(')
_DASH_OPEN = re.compile(r"\A\s*[—–]\s*")
_DASH_CLOSE = re.compile(r"\s[—–]\s*")


@dataclass(frozen=True)
class Quotation:
    """One speech: where its parts are, by paragraph (``(block, (begin, end))``, in reading order)."""

    id: str
    chapter: int
    parts: tuple[tuple[int, Span], ...]

    @property
    def first_block(self) -> int:
        return self.parts[0][0]


def _double(text: str) -> tuple[list[Span], bool]:
    """The double-quoted spans of a paragraph, and whether its last quote is left open (a speech running on)."""
    spans, start = [], None
    for i, ch in enumerate(text):
        if ch != '"':
            continue
        if start is None:
            start = i
        else:
            spans.append((start, i + 1))
            start = None
    if start is not None:
        spans.append((start, len(text)))
    return spans, start is not None


def _single(text: str) -> tuple[list[Span], bool]:
    """Single-quoted spans, told from apostrophes: an opening quote follows a space (or starts the paragraph) and
    comes before a letter (or a dash: ``'--yes, that's it'``); a closing one ends a word after the speech's
    punctuation, or after its last letter where punctuation or a speech verb follows (``'...know better';``,
    ``'...sir' said Alice``: never ``the Bennets' house``)."""
    spans, start = [], None
    for i, ch in enumerate(text):
        if ch != "'":
            continue
        before = text[i - 1] if i else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        if start is None:
            if before in _OPEN_BEFORE and (after.isalnum() or after in _OPEN_AFTER):
                start = i
        elif (before in _CLOSE_AFTER and not after.isalnum()) or (before.isalpha() and _closes_after_word(text, i)):
            spans.append((start, i + 1))
            start = None
    if start is not None:
        spans.append((start, len(text)))
    return spans, start is not None


def _closes_after_word(text: str, i: int) -> bool:
    """An apostrophe after a letter that closes a quotation: punctuation or a speech verb follows it, or it ends
    a word in capitals (never ``goin' home``, ``the Bennets' house``)."""
    after = text[i + 1 : i + 2]
    if not after or after in ",.;:!?)—–-" or _TAG_VERB.match(text, i + 1):
        return True
    return text[i - 1].isupper() and after.isspace()  # a label in capitals: 'DRINK ME' beautifully printed


def _dashed(text: str) -> list[Span]:
    """Em-dash dialogue: ``— Yes, — said she, — I do.``"""
    opening = _DASH_OPEN.match(text)
    if not opening:
        return []
    spans, at, speaking = [], opening.start(), True
    for mark in _DASH_CLOSE.finditer(text, opening.end()):
        if speaking:
            spans.append((at, mark.start()))
        at, speaking = mark.start() + 1, not speaking
    if speaking:
        spans.append((at, len(text)))
    return [(b, e) for b, e in spans if text[b:e].strip(" —–")]


def paragraph_spans(text: str) -> tuple[list[Span], bool]:
    """A paragraph's quoted spans (by the marks it uses), and whether the last is left open."""
    if '"' in text:
        single, left_open = _single(text)
        doubles = [i for i, ch in enumerate(text) if ch == '"']
        if single and all(any(b < i < e for b, e in single) for i in doubles):
            return single, left_open  # 'And see whether it's marked "poison" or not': a quotation inside
        return _double(text)
    if dashed := _dashed(text):
        return dashed, False
    return _single(text)


_TURN = re.compile(
    r"[.!?)]\s+\(?[A-Z]|\b(?:and|while|when|then|but)\s+(?:(?:the|a|an|old|young|little)\s+)*[A-Z][a-z]+\s+[a-z]+"
)


def _new_turn(text: str, previous: Span, part: Span) -> bool:
    """Whether a quoted part of a paragraph starts a new speech rather than going on with the one before: nothing
    between them (``'...' '...'``, two voices), a whole sentence of narration (``'...!' When the Mouse heard this,
    it said, '...'``), or a clause bringing in another speaker (``'...' and an old Crab took the opportunity of
    saying '...'``). The speaker may still be the same one: attribution decides."""
    narration = text[previous[1] : part[0]].strip()
    if not narration:
        return True
    ended = text[previous[0] : previous[1]].rstrip("'\"’” ").endswith((".", "!", "?"))
    return (ended and narration[0].isupper()) or bool(_TURN.search(narration))


def find_quotations(chapter: int, blocks: Sequence[Block]) -> list[Quotation]:
    """Every quotation of the chapter in reading order. A paragraph's parts are one quotation, its tags between
    them narration, until a new turn begins (_new_turn); a paragraph left open continues into the next one that
    opens with a quote."""
    quotations: list[list[tuple[int, Span]]] = []
    open_from: int | None = None  # the paragraph whose last quote is still open
    for index, block in enumerate(blocks):
        if block.kind != "paragraph":
            open_from = None
            continue
        spans, left_open = paragraph_spans(block.text)
        if not spans:
            open_from = None
            continue
        runs_on = open_from is not None and spans[0][0] == len(block.text) - len(block.text.lstrip())
        for k, span in enumerate(spans):
            # a sentence of narration between two parts ends a turn ("'Ugh!' said the Lory. 'Now...'" is one
            # quotation; "'...home!' and a Canary called out, 'Come...'" or "...it said. Then it went on, '..."
            # two): a paragraph can hold two speakers
            joined = (runs_on and k == 0) or (k > 0 and not _new_turn(block.text, spans[k - 1], span))
            if joined:
                quotations[-1].append((index, span))
            else:
                quotations.append([(index, span)])
        open_from = index if left_open else None
    found: list[Quotation] = []
    seen: dict[str, int] = {}
    for parts in quotations:
        text = "\x1f".join(blocks[b].text[s:e] for b, (s, e) in parts)
        seen[text] = seen.get(text, 0) + 1  # "Yes." twice in a chapter: two quotations
        found.append(Quotation(_quotation_id(chapter, text, seen[text]), chapter, tuple(parts)))
    return found


def _quotation_id(chapter: int, text: str, occurrence: int) -> str:
    """Stable while its words are: its chapter, its text, which of its chapter's quotations with that text it is
    (an edit elsewhere leaves it alone)."""
    return "q" + hashlib.sha256(f"{chapter}\x1e{text}\x1e{occurrence}".encode()).hexdigest()[:10]


def excerpt(blocks: Sequence[Block], quotation: Quotation, limit: int = 90) -> str:
    """What the cast file shows of a quotation: its parts with "…" for what lies between, shortened."""
    text = " … ".join(blocks[b].text[s:e].strip() for b, (s, e) in quotation.parts)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
