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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..document import Block
from .quotes import SPEECH_VERB, SPEECH_VERBS, Quotation

TITLES = {"mr": "male", "mister": "male", "sir": "male", "lord": "male", "colonel": "male", "captain": "male",
          "mrs": "female", "missus": "female", "miss": "female", "lady": "female", "madam": "female",
          "ms": "female", "dr": None, "doctor": None}  # fmt: skip
_GENDER_WORDS = {w: "male" for w in "king prince duke earl father uncle brother son boy man gentleman".split()} | {
    w: "female" for w in "queen princess duchess countess mother aunt sister daughter girl woman".split()
}
_TITLE_KEY = {"mister": "mr", "missus": "mrs", "doctor": "dr"}
PRONOUNS = {"he": "male", "she": "female", "it": "it"}  # "it": the last named one not a she (the Caterpillar)
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
_BEFORE_NAME = r"(?:(?:the|a|an|poor|old|young|little|dear)\s+)*"  # "said the Caterpillar", "thought poor Alice"
_VERB_THEN_NAME = re.compile(SPEECH_VERB + r"\s+" + _BEFORE_NAME + r"(" + _NAME.pattern + r"|he|she|it)\b")
_NAME_OR_PRONOUN = re.compile(_NAME.pattern + r"|\b[Hh]e\b|\b[Ss]he\b|\b[Ii]t\b")
# between a name and its verb: an aside, never another clause's verb ("Latitude was, or Longitude either, but thought")
# or a clause about them set off by commas ("the Mouse, who seemed to be a person of authority, called out")
_NAME_THEN_VERB = re.compile(
    r"(?:,\s+who\b[^.!?\"]{0,80}?,\s*|(?:(?!\b(?:was|were|is|are|had|has|and|or|which|that)\b)[^.!?\"]){0,40}?)"
    + SPEECH_VERB
)
# a few words may lead into an after-tag ("..." was all she said), never a new clause ("..." and a Canary called)
_LEAD = r"(?:(?!(?:and|but|while|when|then|as)\b)[a-z]+\s+){0,3}"
_AFTER_TAG = re.compile(
    r"[\s,;:—–-]*(?:" + SPEECH_VERB + r"\s+" + _BEFORE_NAME + r"(?P<verb_first>" + _NAME.pattern + r"|he|she|it)\b"
    r"|"
    + _LEAD
    + _BEFORE_NAME
    + r"(?P<name_first>"
    + _NAME.pattern
    + r"|[Hh]e|[Ss]he|[Ii]t)\b(?:\s+[a-z]+ly)?\s+"
    + SPEECH_VERB
    + r")"
)
# a speaker the text describes rather than names: "said the youth", "replied the stranger"
_DESCRIBED = re.compile(
    r"[\s,;:—–-]*" + SPEECH_VERB + r"\s+the\s+(?:(?:old|young|little)\s+)?([a-z]{3,})\b(?!\s+[A-Z])"
)
_NOT_SPEAKERS = frozenset("other others voice voices rest whole first last next same former latter party crowd".split())
_BARE_WORD = re.compile(r"\b[A-Z][a-z]+\b")


def name_key(name: str) -> str:
    """``Mr. Darcy``, ``Mister Darcy`` and ``mr darcy`` are one name."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", name)]
    return " ".join(_TITLE_KEY.get(w, w) for w in words)


def gender_of(name: str) -> str | None:
    """What a name says of gender: its title ("Mrs. Bennet"), or a word like "Queen" or "Father" in it."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", name)]
    if words and TITLES.get(words[0]):
        return TITLES[words[0]]
    return next((_GENDER_WORDS[w] for w in words if w in _GENDER_WORDS), None)


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
        self._proper: set[str] = set()  # words the book capitalises inside a sentence
        for c in characters:
            self.add(c)

    def read(self, texts: Iterable[str]) -> None:
        """The book's words, to tell a name from a word that only starts a sentence ("Presently she began")."""
        for text in texts:
            for m in _BARE_WORD.finditer(text):
                before = text[max(0, m.start() - 4) : m.start()].rstrip(" \t\n'\"([")
                if before and before[-1] not in ".!?:;-—–":
                    self._proper.add(m.group())

    def may_name(self, word: str) -> bool:
        """Whether a capitalised word can be a name: not a common word ("The"), and one the book capitalises
        inside a sentence too ("said the Mouse"), or a known character's."""
        lower = word.lower()
        if lower in _NOT_NAMES:
            return False
        if not self._proper:  # the book not read: any capitalised word
            return True
        # a name the book never capitalises mid-sentence is a sentence's first word ("Presently she began")
        return word in self._proper or any(name_key(word) == k.split()[-1] for k in self._by_key)

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
        if len(words) == 1:  # "Rabbit" is the White Rabbit, when no one else's name ends so
            ending = {c.name: c for k, c in self._by_key.items() if k.split()[-1] == key and k.split()[0] not in TITLES}
            return next(iter(ending.values())) if len(ending) == 1 else None
        if words[0] in TITLES or words[0] in _TITLE_KEY.values():
            return None
        return self._by_key.get(words[0]) or self._by_key.get(words[-1])

    def learn_gender(self, character: Character, gender: str | None) -> None:
        """What the text says of a character of no known gender (a known one keeps the cast's word)."""
        if character.gender is None and gender is not None:
            character.gender = gender

    def named(self, name: str) -> Character:
        """The character ``name`` names, made when the text names one not met before."""
        return self.find(name) or self.add(Character(name, gender=gender_of(name)))


def _is_name(found: str, cast: Cast) -> bool:
    """Not a capitalised common word ("The", "Yes", "Presently"), nor a bare title ("Miss" alone)."""
    words = found.split()
    if words[0].lower().rstrip(".") in TITLES and len(words) > 1:
        words = words[1:]
    elif words[0].lower().rstrip(".") in TITLES:
        return False
    return cast.may_name(words[0])


def _names(text: str, cast: Cast) -> list[tuple[int, str]]:
    return [(m.start(), m.group()) for m in _NAME.finditer(text) if _is_name(m.group(), cast)]


def _tag(narration: str, cast: Cast, before: bool) -> tuple[str, str] | None:
    """The speaker a speech tag in ``narration`` names: ("name", X) or ("pronoun", he/she). After a speech the
    tag starts the narration (``"...," said the Mouse``, ``"...," Alice replied``: not ``"..." and a Canary
    called out``, which is the next speech's); before one, it is in the sentence that leads into it."""
    words = narration.strip()
    if not words or not any(t.lower() in SPEECH_VERBS for t in _WORD.findall(words)):
        return None
    if not before:
        if (described := _DESCRIBED.match(words)) and described.group(1) not in _NOT_SPEAKERS:
            return "name", described.group(1).capitalize()  # "said the youth": the Youth, a character
        m = _AFTER_TAG.match(words)
        who = (m.group("verb_first") or m.group("name_first")) if m else None
        if who is None:
            return None
        if who.lower() in PRONOUNS:
            return "pronoun", who.lower()
        return ("name", who) if _is_name(who, cast) else None
    # "said Elizabeth", "replied Mister Darcy", "said she", "said the Caterpillar", "thought poor Alice"
    for m in reversed(list(_VERB_THEN_NAME.finditer(words))):  # the tag nearest the speech
        who = m.group(1)
        if who in PRONOUNS:
            return "pronoun", who
        if _is_name(who, cast):
            return "name", who
    # "Elizabeth replied", "she said", "Mister Darcy, after a pause, answered", "the Mouse replied crossly"
    for m in reversed(list(_NAME_OR_PRONOUN.finditer(words))):  # "Alice heard the Rabbit say": the Rabbit
        who = m.group()
        if not _NAME_THEN_VERB.match(words, m.end()):
            continue
        if who.lower() in PRONOUNS:
            return "pronoun", who.lower()
        if _is_name(who, cast):
            return "name", who
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
        for _, name in _names(" ".join(between), cast):
            character = cast.find(name)
            if character is not None:
                _remember(recent, character)
        if _mention(blocks, q, cast):
            answers.append(Attribution(q.id, None, 0.5, "mention"))
            speakers.append(None)
            previous_block = q.parts[-1][0]
            continue
        found = _from_tags(blocks, q, cast, recent)
        conversation = block - previous_block == 1 or (block - previous_block == 0)
        if found is None and block == previous_block and speakers:  # the paragraph's speaker goes on
            found = (speakers[-1], 0.6, "paragraph") if speakers[-1] is not None else None
        if found is None and conversation and addressed is not None:
            found = (addressed, 0.6, "vocative")
        if found is None and conversation and len(speakers) >= 2 and speakers[-2] is not None:
            found = (speakers[-2], 0.55, "turn")
        if found is None and speakers and speakers[-1] is not None:
            found = (speakers[-1], 0.2, "last")
        speaker, confidence, how = found or (None, 0.0, "none")
        if speaker is not None:
            speaker.lines += 1
            _remember(recent, speaker)
        answers.append(Attribution(q.id, speaker.name if speaker else None, confidence, how))
        speakers.append(speaker)
        quoted = " ".join(blocks[b].text[s:e] for b, (s, e) in q.parts)
        addressed = _vocative(quoted, cast)
        if addressed is speaker:
            addressed = None
        previous_block = q.parts[-1][0]
    return answers


def _mention(blocks: Sequence[Block], q: Quotation, cast: Cast) -> bool:
    """Quoted words nobody says, read by the narrator: a few words inside a sentence of narration with no speech
    verb leading in and no tag after (``labelled 'ORANGE MARMALADE'``, ``marked 'poison'``)."""
    if len(q.parts) != 1:
        return False
    block, (begin, end) = q.parts[0]
    text = blocks[block].text
    lead = _clause(text[:begin], after=False)
    if len(_WORD.findall(text[begin:end])) > 4 or not re.search(r"[a-z]\s$", lead):
        return False
    if any(w.lower() in SPEECH_VERBS for w in _WORD.findall(lead[-30:])) or re.search(r"sel(?:f|ves)\s$", lead):
        return False
    return _tag(_clause(text[end:], after=True), cast, before=False) is None


def _remember(recent: dict[str, Character], character: Character) -> None:
    """The last character named of each gender, for a pronoun; "it" for anyone but a she."""
    if character.gender:
        recent[character.gender] = character
    if character.gender != "female":
        recent["it"] = character


def _from_tags(
    blocks: Sequence[Block], q: Quotation, cast: Cast, recent: dict[str, Character]
) -> tuple[Character, float, str] | None:
    """The speaker a tag beside any part of the quotation names: the narration after a part (to the next part or
    the paragraph's end), or before the first part."""
    places: list[tuple[str, bool]] = []
    for k, (block, (begin, end)) in enumerate(q.parts):
        text = blocks[block].text
        following = q.parts[k + 1][1][0] if k + 1 < len(q.parts) and q.parts[k + 1][0] == block else len(text)
        places.append((_clause(text[end:following], after=True), False))
        if k == 0:
            places.append((_clause(text[:begin], after=False), True))
    tags = [(tag, narration) for narration, before in places if (tag := _tag(narration, cast, before)) is not None]
    for (kind, who), narration in tags:  # a name anywhere beside the speech before a pronoun
        if kind == "name":
            character = cast.named(who)
            cast.learn_gender(character, _pronoun_gender(narration))  # "said Tobias, shaking his head": a he
            return character, 0.95, "tag"
    for (_, who), _ in tags:
        if who in PRONOUNS and PRONOUNS[who] in recent:
            return recent[PRONOUNS[who]], 0.75, "pronoun"
    return None


def _clause(narration: str, after: bool) -> str:
    """The narration a tag can be in: after a speech, to the end of its sentence (at most 120 characters);
    before one, from the start of its sentence."""
    if after:
        return re.split(r"(?<=[.!?;])\s", narration[:120], maxsplit=1)[0]
    return re.split(r"[.!?;]\s", narration[-120:])[-1]


def _learn_genders(narration: str, cast: Cast) -> None:
    """A sentence of narration whose subject is a known character of no known gender, and whose pronouns are of one
    gender only: "Tobias coiled the rope and shook his head." ("her" may be someone else: it says nothing alone)."""
    for sentence in re.split(r"(?<=[.!?])\s+", narration):
        names = _names(sentence, cast)
        if not names or names[0][0] != 0:
            continue
        character = cast.find(names[0][1])
        if character is None:
            continue
        his = bool(re.search(r"\b(?:he|his|himself)\b", sentence, re.IGNORECASE))
        hers = bool(re.search(r"\b(?:she|herself)\b", sentence, re.IGNORECASE))
        cast.learn_gender(character, "male" if his and not hers else "female" if hers and not his else None)


# the speaker's own pronouns in a tag ("said Tobias, shaking his head"): "him", "her", "he" and "she" are as often
# someone else ("the Caterpillar called after her", "said the Caterpillar, just as if she had asked it")
_HIS = re.compile(r"\b(?:his|himself)\b", re.IGNORECASE)
_HERS = re.compile(r"\bherself\b", re.IGNORECASE)


def _pronoun_gender(narration: str) -> str | None:
    """The gender the pronouns of a speech tag's narration give its speaker, when they give only one."""
    his, hers = bool(_HIS.search(narration)), bool(_HERS.search(narration))
    return "male" if his and not hers else "female" if hers and not his else None
