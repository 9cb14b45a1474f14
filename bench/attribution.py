"""The cast's offline attribution measured on a public-domain novel annotated by hand (issue #26).

The text: Alice's Adventures in Wonderland (Lewis Carroll, 1865), the Millennium Fulcrum Edition 2.9 that the
Canterbury corpus holds as alice29.txt; Brotli's source distribution on PyPI carries it as test data, so a fresh
machine gets it from the package registry (pip download, once, into BENCH_CACHE). The answers:
bench/data/alice_speakers.txt, a speaker for each of the 325 quotation marks that open in chapters I-V.

The edition marks each quotation's opening with a backtick (`Oh dear!'), which tells a quotation from an
apostrophe without doubt; narrator reads the file as any user's plain text (the backtick becomes the opening
quote it stands for) and knows nothing of the answers. A quotation here is one quoted stretch: ``"Yes," said she,
"I do."`` counts twice, once per part, each with its speaker.

Figures: the share of quotations whose speaker narrator names (a quotation narrator does not find is read by the
narrator: right only if nobody says it), the same for those with a speech verb beside them, and how much
narration (letters outside the quotations) a character's voice would read.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "bench" / "data" / "alice_speakers.txt"
SDIST = "Brotli==1.2.1"
MEMBER = "brotli-1.2.1/tests/testdata/alice29.txt"
SHA256 = "7467306ee0feed4971260f3c87421154a05be571d944e9cb021a5713700c38f0"
CHAPTERS = 7  # the chapters annotated
TUNED = (1, 2, 3, 4, 5)  # the chapters whose mistakes the rules were changed for; VI-VII are held out
# The characters a user would name for these chapters: the ones who speak most, by the names the text gives them
NAMED = {
    "Alice": {},
    "White Rabbit": {"aliases": ["Rabbit"]},
    "Mouse": {},
    "Caterpillar": {},
    "Pigeon": {},
    "Dodo": {},
    "Lory": {},
}
# What counts as a speech verb for the "with a speech verb" figure: fixed here, apart from narrator's own list
TAG_VERBS = [
    *"said says replied answered asked cried returned continued added observed exclaimed whispered shouted".split(),
    *"muttered murmured remarked repeated began called protested insisted explained declared interrupted".split(),
    *"sighed inquired retorted demanded pleaded begged suggested snapped growled gasped ventured thought".split(),
    "screamed",
    "went on",
]
_TAG_AFTER = re.compile(r"^[\s,;:!?.)(-]*(?:(?:the|said|cried|replied|thought|asked)\s+)*(?:[A-Z][a-z]+|she|he|it)\b")


@dataclass(frozen=True)
class Truth:
    """One quotation mark that opens: where (chapter, paragraph of the chapter, offset in its text), whose."""

    id: str  # CHAPTER.N
    chapter: int
    paragraph: int
    begin: int
    end: int  # its closing mark, or the paragraph's end when it runs on
    speaker: str
    tagged: bool  # a speech verb beside it, in its paragraph, names or points to a speaker


def alice_text(cache: Path) -> Path:
    """alice29.txt from Brotli's source distribution, downloaded once and checked by its SHA-256."""
    target = cache / "alice29.txt"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                            "--dest", tmp, SDIST], check=True)  # fmt: skip
            (archive,) = Path(tmp).glob("*.tar.gz")
            with tarfile.open(archive) as tar:
                member = tar.extractfile(MEMBER)
                assert member is not None
                data = member.read()
        if hashlib.sha256(data).hexdigest() != SHA256:
            raise SystemExit(f"{SDIST}'s {MEMBER} is not the text annotated (SHA-256 differs)")
        target.write_bytes(data)
    return target


def read_answers() -> dict[str, str]:
    """CHAPTER.N -> speaker, from the annotation file (ranges expanded; a quotation given twice is an error)."""
    answers: dict[str, str] = {}
    for number, line in enumerate(ANSWERS.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        where, speaker = line.split(" ", 1)
        chapter, span = where.split(".")
        first, _, last = span.partition("-")
        for n in range(int(first), int(last or first) + 1):
            key = f"{chapter}.{n}"
            assert key not in answers, f"{ANSWERS.name}:{number}: {key} given twice"
            answers[key] = speaker.strip()
    return answers


def _paragraphs(raw: str) -> list[list[str]]:
    """The book's chapters, each a list of its paragraphs with their whitespace as the reader collapses it."""
    chapters = re.split(r"\n\s*CHAPTER [IVXL]+\s*\n", raw)[1:]
    return [[re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", c) if p.strip()] for c in chapters]


def _closing(paragraph: str, begin: int, limit: int) -> int | None:
    """The quotation's closing mark: the last apostrophe before the next opening that ends a word (not ``I'm``)."""
    marks = [i for i in range(begin + 1, limit) if paragraph[i] == "'" and not paragraph[i - 1].isspace()
             and not (i + 1 < len(paragraph) and paragraph[i + 1].isalnum())]  # fmt: skip
    return marks[-1] + 1 if marks else None


def truths(raw: str, answers: dict[str, str]) -> list[Truth]:
    """Every opening mark of the annotated chapters, with its extent and its annotated speaker."""
    verb = re.compile(r"\b(?:" + "|".join(TAG_VERBS) + r")\b")
    found: list[Truth] = []
    for c, paragraphs in enumerate(_paragraphs(raw)[:CHAPTERS], 1):
        n = 0
        for p, text in enumerate(paragraphs):
            opens = [i for i, ch in enumerate(text) if ch == "`"]
            for k, begin in enumerate(opens):
                n += 1
                limit = opens[k + 1] if k + 1 < len(opens) else len(text)
                end = _closing(text, begin, limit) or len(text)
                before = text[opens[k - 1] if k else 0 : begin]
                before = before[before.rfind("'") + 1 :] if k else before[-60:]
                after = text[end:limit][:60]
                tagged = bool(verb.search(after[:40]) and _TAG_AFTER.match(after)) or bool(verb.search(before))
                found.append(Truth(f"{c}.{n}", c, p, begin, end, answers[f"{c}.{n}"], tagged))
    assert len(found) == len(answers), f"{len(found)} quotations in the text, {len(answers)} annotated"
    return found


def _block_of(paragraph: str, blocks: dict[str, int]) -> tuple[int, list[int]] | None:
    """The prepared block a source paragraph became, and each source offset's place in it (the reader drops
    the underscores of _italics_ and reads the backtick as a quote)."""
    shown, where = [], []
    for ch in paragraph:
        where.append(len(shown))
        if ch != "_":
            shown.append("'" if ch == "`" else ch)
    index = blocks.get("".join(shown))
    return (index, where) if index is not None else None


@dataclass(frozen=True)
class Measured:
    """Each annotated quotation with narrator's speaker, and per chapter: narration letters, those voiced."""

    rows: list[tuple[Truth, str]]
    narration: dict[int, tuple[int, int]]

    def figures(self, chapters: Sequence[int]) -> dict[str, object]:
        rows = [(t, g) for t, g in self.rows if t.chapter in chapters]
        voiced, letters = (sum(self.narration[c][k] for c in chapters) for k in (0, 1))
        return _figures(rows, letters, voiced)


def measure(book: Path, characters: dict[str, dict[str, object]], work: Path) -> Measured:
    """The offline attribution of the book's first chapters against the answers."""
    from narrator.job.cast import cast_of, speaker_spans
    from narrator.job.spec import load_job
    from narrator.synthesis.script import prepare_script
    from narrator.text.dialogue.quotes import find_quotations

    job_path = work / "alice.yaml"
    spec = {"sources": [str(book)], "voice": {"provider": "local"}, "output": {"dir": str(work / "out")},
            "cast": {"attribution": "text", "characters": characters}}  # fmt: skip
    job_path.write_text(yaml.safe_dump(spec))
    job = load_job(job_path)
    chapters = prepare_script(job).chapters[:CHAPTERS]
    cast = cast_of(job, chapters, None).cast
    said = {q.id: q.speaker for q in cast.quotations}
    alias = {a.lower(): c.name for c in cast.characters for a in (c.name, *c.aliases)} | {"narrator": "narrator"}
    raw = book.read_text(encoding="utf-8")
    answers = truths(raw, read_answers())
    rows: list[tuple[Truth, str]] = []
    counts: dict[int, tuple[int, int]] = {}
    spans = speaker_spans(chapters, cast)
    for c, (chapter, paragraphs) in enumerate(zip(chapters, _paragraphs(raw), strict=False), 1):
        by_text = {b.text: i for i, b in enumerate(chapter.blocks) if b.kind == "paragraph"}
        parts = {(block, s): q.id for q in find_quotations(c - 1, chapter.blocks) for block, s in q.parts}
        running = False  # a quotation left open runs on into the paragraphs after it
        narration = voiced = 0
        for p, text in enumerate(paragraphs):
            placed = _block_of(text, by_text)
            mine = [t for t in answers if t.chapter == c and t.paragraph == p]
            inside = [(t.begin, t.end) for t in mine]
            if running and not text.startswith("`"):
                close = _closing(text, -1, mine[0].begin if mine else len(text))
                inside.append((0, close or len(text)))
                running = close is None
            if mine:
                running = _closing(text, mine[-1].begin, len(text)) is None
            for t in mine:
                rows.append((t, alias.get(_guess(t, placed, parts, said).lower(), "narrator")))
            cuts = spans.get((c - 1, placed[0]), []) if placed else []
            for i, ch in enumerate(text):
                if ch.isalpha() and not any(b <= i < e for b, e in inside):
                    narration += 1
                    at = placed[1][i] if placed else -1
                    voiced += any(b <= at < e and who != "narrator" for b, e, who in cuts)
        counts[c] = (voiced, narration)
    return Measured(rows, counts)


def _guess(truth: Truth, placed: tuple[int, list[int]] | None, parts: dict, said: dict[str, str]) -> str:
    """Whom narrator gives the quotation that holds this opening mark (the narrator's, if it found none)."""
    if placed is None:
        return "narrator"
    block, where = placed
    at = where[truth.begin]
    hit = [qid for (b, (s, e)), qid in parts.items() if b == block and s <= at < e]
    return said.get(hit[0], "narrator") if hit else "narrator"


def _names(guess: str, truth: str) -> bool:
    """Whether narrator's speaker is the annotated one: its name, or the name's last word (a cast made with no
    characters named calls the White Rabbit "Rabbit" when the text first says "the Rabbit")."""
    return guess.lower() in (truth.lower(), truth.lower().split()[-1])


def _figures(rows: list[tuple[Truth, str]], letters: int, voiced: int) -> dict[str, object]:
    right = [t for t, guess in rows if _names(guess, t.speaker)]
    tagged = [(t, g) for t, g in rows if t.tagged]
    wrong = collections.Counter((t.speaker, g) for t, g in rows if not _names(g, t.speaker))
    return {
        "quotations": len(rows),
        "right": len(right) / len(rows),
        "tagged": len(tagged),
        "tagged_right": sum(_names(g, t.speaker) for t, g in tagged) / len(tagged),
        "narration_voiced": voiced / max(1, letters),
        "narration_letters": (voiced, letters),
        "confusions": wrong.most_common(8),
    }


def bench_cast() -> None:
    cache = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "narrator-bench"))
    book = alice_text(cache)
    print("cast: offline attribution on Alice's Adventures in Wonderland, quotations annotated by hand")
    held_out = tuple(c for c in range(1, CHAPTERS + 1) if c not in TUNED)
    for label, characters in (("no characters named", {}), (f"{len(NAMED)} characters named", NAMED)):
        with tempfile.TemporaryDirectory() as tmp:
            measured = measure(book, characters, Path(tmp))
        print(f"  {label}")
        for part, chapters in (("I-V (tuned on)", TUNED), ("VI-VII (held out)", held_out),
                               ("I-VII", TUNED + held_out)):  # fmt: skip
            f = measured.figures(chapters)
            print(f"    {part:<18} {f['right']:.1%} of {f['quotations']} quotations right; {f['tagged_right']:.1%} "
                  f"of the {f['tagged']} with a speech verb; narration in a character's voice "
                  f"{f['narration_voiced']:.2%} ({f['narration_letters'][0]} of {f['narration_letters'][1]} "
                  "letters)")  # fmt: skip
            print(f"      most common mistakes (annotated, attributed): {f['confusions']}")
