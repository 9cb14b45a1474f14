"""Who says each quotation, from the text alone (``cast.attribution: text``), and how sure that is.

In order of trust: a speech tag beside the quotation naming a character (``said Elizabeth``, ``Elizabeth
replied``; 0.95); a tag with a pronoun (``returned she``), given to the last named character of that gender
(0.75); in a conversation (quotations in consecutive paragraphs with no narration paragraph between), the one
spoken to by name in the line before (a vocative: ``"..., Lizzy."``; 0.6), else the turn of the one who spoke two
lines before (0.55); otherwise the last speaker of the chapter (0.2), or nobody (0.0: the narrator reads it).

Names are matched by a key that ignores case, dots and the form of a title (the prepared text says "Mister Darcy"
for the book's "Mr. Darcy"): a character's aliases and the name it is first seen by all lead to it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..document import Block
from .quotes import Quotation

SPEECH_VERBS = frozenset(
    "said says say replied replies answered answers asked asks cried cries returned continued added observed "
    "exclaimed whispered shouted muttered murmured remarked rejoined repeated began called protested insisted "
    "admitted agreed explained declared interrupted laughed sighed inquired enquired resumed retorted responded "
    "demanded pleaded begged urged warned suggested stammered snapped growled groaned gasped breathed persisted "
    "objected conceded concluded ventured hazarded thought wondered told yelled screamed answered spoke read".split()
)
TITLES = {"mr": "male", "mister": "male", "sir": "male", "lord": "male", "colonel": "male", "captain": "male",
          "mrs": "female", "missus": "female", "miss": "female", "lady": "female", "madam": "female",
          "ms": "female", "dr": None, "doctor": None}  # fmt: skip
_TITLE_KEY = {"mister": "mr", "missus": "mrs", "doctor": "dr"}
PRONOUNS = {"he": "male", "she": "female"}
_VERB = r"\b(?:" + "|".join(sorted(SPEECH_VERBS)) + r")\b"
_NAME = re.compile(
    r"\b(?:(?:Mr|Mrs|Ms|Dr|Mister|Missus|Miss|Sir|Lady|Lord|Colonel|Captain|Doctor|Madam)\.?\s+)?"
    r"[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?"
)
_NOT_NAMES = frozenset(
    "the a an and but or if then when while he she it they we you i his her its their our your my this that "
    "these those there here what who why how yes no oh ah well now not so do did does is was are were be "
    "chapter part book said says one two three god heaven".split()
)
_WORD = re.compile(r"[A-Za-z']+")


def name_key(name: str) -> str:
    """``Mr. Darcy``, ``Mister Darcy`` and ``mr darcy`` are one name."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", name)]
    return " ".join(_TITLE_KEY.get(w, w) for w in words)


def gender_of(name: str) -> str | None:
    first = re.findall(r"[A-Za-z]+", name)[:1]
    return TITLES.get(first[0].lower()) if first else None


@dataclass
class Character:
    name: str  # as the cast file shows it
    aliases: list[str] = field(default_factory=list)
    gender: str | None = None
    lines: int = 0


@dataclass(frozen=True)
class Attribution:
    quotation: str  # its id
    speaker: str | None  # a character's name; None: the narrator reads it
    confidence: float
    how: str  # tag | pronoun | vocative | turn | last | none


class Cast:
    """The characters known so far, by every key that names them."""

    def __init__(self, characters: Sequence[Character] = ()) -> None:
        self.characters: list[Character] = []
        self._by_key: dict[str, Character] = {}
        for c in characters:
            self.add(c)

    def add(self, character: Character) -> Character:
        self.characters.append(character)
        for name in (character.name, *character.aliases):
            self._by_key.setdefault(name_key(name), character)
        return character

    def find(self, name: str) -> Character | None:
        key = name_key(name)
        if key in self._by_key:
            return self._by_key[key]
        words = key.split()  # "Elizabeth Bennet" is Elizabeth (or Bennet); "Miss Bennet" is nobody yet
        if len(words) < 2 or words[0] in TITLES or words[0] in _TITLE_KEY.values():
            return None
        return self._by_key.get(words[0]) or self._by_key.get(words[-1])

    def learn_gender(self, character: Character, gender: str | None) -> None:
        """What the text says of a character of no known gender (a known one keeps the cast's word)."""
        if character.gender is None and gender is not None:
            character.gender = gender

    def named(self, name: str) -> Character:
        """The character ``name`` names, made when the text names one not met before."""
        return self.find(name) or self.add(Character(name, gender=gender_of(name)))


def _is_name(found: str) -> bool:
    """Not a capitalised common word ("The", "Yes"), nor a bare title ("Miss" alone)."""
    words = found.split()
    if words[0].lower().rstrip(".") in TITLES and len(words) > 1:
        words = words[1:]
    elif words[0].lower().rstrip(".") in TITLES:
        return False
    return words[0].lower() not in _NOT_NAMES


def _names(text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group()) for m in _NAME.finditer(text) if _is_name(m.group())]


def _tag(narration: str, before: bool) -> tuple[str, str] | None:
    """The speaker a speech tag in ``narration`` names: ("name", X) or ("pronoun", he/she). ``before``: the
    narration comes before the quotation (``Elizabeth replied, "..."``), else after it (``"...," said she``)."""
    words = narration.strip()
    if not words:
        return None
    tokens = _WORD.findall(words)
    if not any(t.lower() in SPEECH_VERBS for t in tokens):
        return None
    # "said Elizabeth", "replied Mister Darcy", "said she"
    m = re.search(_VERB + r"\s+(" + _NAME.pattern + r"|he|she)\b", words)
    if m and (m.group(1) in PRONOUNS or _is_name(m.group(1))):
        return ("pronoun", m.group(1)) if m.group(1) in PRONOUNS else ("name", m.group(1))
    # "Elizabeth replied", "she said", "Mister Darcy, after a pause, answered"
    m = re.search(r"(" + _NAME.pattern + r"|\b[Hh]e|\b[Ss]he)\b[^.!?\"]{0,40}?" + _VERB, words)
    if m:
        who = m.group(1)
        if who.lower() in PRONOUNS:
            return ("pronoun", who.lower())
        if _is_name(who):
            return ("name", who)
    return None


def _vocative(quoted: str, cast: Cast) -> Character | None:
    """A known character spoken to by name in the quotation: ``"..., Lizzy."``, ``"Jane, ..."``."""
    for m in re.finditer(r", (" + _NAME.pattern + r")(?=[,.!?])", quoted):  # ", Lizzy." (not "Jane, yes.")
        found = cast.find(m.group(1))
        if found is not None:
            return found
    return None


def attribute(blocks: Sequence[Block], quotations: Sequence[Quotation], cast: Cast) -> list[Attribution]:
    """Each quotation of one chapter its speaker, in reading order (``cast`` learns the names the text gives)."""
    answers: list[Attribution] = []
    recent: dict[str, Character] = {}  # gender -> the last character of it named in the chapter
    speakers: list[Character | None] = []
    previous_block = -2
    addressed: Character | None = None
    for q in quotations:
        block, (begin, _) = q.parts[0]
        # narration since the last quotation names characters: a pronoun may point at them
        between = [blocks[b].text for b in range(max(0, previous_block + 1), block)] + [blocks[block].text[:begin]]
        _learn_genders(" ".join(between), cast)
        for _, name in _names(" ".join(between)):
            character = cast.find(name)
            if character is not None and character.gender:
                recent[character.gender] = character
        found = _from_tags(blocks, q, cast, recent)
        conversation = block - previous_block == 1 or (block - previous_block == 0)
        if found is None and conversation and addressed is not None:
            found = (addressed, 0.6, "vocative")
        if found is None and conversation and len(speakers) >= 2 and speakers[-2] is not None:
            found = (speakers[-2], 0.55, "turn")
        if found is None and speakers and speakers[-1] is not None:
            found = (speakers[-1], 0.2, "last")
        speaker, confidence, how = found or (None, 0.0, "none")
        if speaker is not None:
            speaker.lines += 1
            if speaker.gender:
                recent[speaker.gender] = speaker
        answers.append(Attribution(q.id, speaker.name if speaker else None, confidence, how))
        speakers.append(speaker)
        quoted = " ".join(blocks[b].text[s:e] for b, (s, e) in q.parts)
        addressed = _vocative(quoted, cast)
        if addressed is speaker:
            addressed = None
        previous_block = q.parts[-1][0]
    return answers


def _from_tags(
    blocks: Sequence[Block], q: Quotation, cast: Cast, recent: dict[str, Character]
) -> tuple[Character, float, str] | None:
    """The speaker a tag beside any part of the quotation names: the narration after a part (to the next part or
    the paragraph's end), or before the first part."""
    places: list[tuple[str, bool]] = []
    for k, (block, (begin, end)) in enumerate(q.parts):
        text = blocks[block].text
        following = q.parts[k + 1][1][0] if k + 1 < len(q.parts) and q.parts[k + 1][0] == block else len(text)
        places.append((text[end:following], False))
        if k == 0:
            places.append((text[:begin], True))
    for narration, before in places:
        tag = _tag(narration[-120:] if before else narration[:120], before)
        if tag is None:
            continue
        kind, who = tag
        if kind == "name":
            character = cast.named(who)
            cast.learn_gender(character, _pronoun_gender(narration))  # "said Tobias, shaking his head": a he
            return character, 0.95, "tag"
        if who in PRONOUNS and PRONOUNS[who] in recent:
            return recent[PRONOUNS[who]], 0.75, "pronoun"
    return None


def _learn_genders(narration: str, cast: Cast) -> None:
    """A sentence of narration whose subject is a known character of no known gender, and whose pronouns are of one
    gender only: "Tobias coiled the rope and shook his head." ("her" may be someone else: it says nothing alone)."""
    for sentence in re.split(r"(?<=[.!?])\s+", narration):
        names = _names(sentence)
        if not names or names[0][0] != 0:
            continue
        character = cast.find(names[0][1])
        if character is None:
            continue
        his = bool(re.search(r"\b(?:he|his|himself)\b", sentence, re.IGNORECASE))
        hers = bool(re.search(r"\b(?:she|herself)\b", sentence, re.IGNORECASE))
        cast.learn_gender(character, "male" if his and not hers else "female" if hers and not his else None)


_HIS = re.compile(r"\b(?:he|his|him|himself)\b", re.IGNORECASE)
_HERS = re.compile(r"\b(?:she|her|hers|herself)\b", re.IGNORECASE)


def _pronoun_gender(narration: str) -> str | None:
    """The gender the pronouns of a speech tag's narration give its speaker, when they give only one."""
    his, hers = bool(_HIS.search(narration)), bool(_HERS.search(narration))
    return "male" if his and not hers else "female" if hers and not his else None
