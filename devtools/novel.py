"""A generated novel for benchmarks and tests: chapters of narrative paragraphs (three to nine sentences) and
runs of one-line dialogue, in the proportions of a nineteenth-century novel (about six in ten paragraphs are
dialogue, most of them a single short line). Deterministic for a seed; the words are drawn from a small
vocabulary, so the text is nobody's."""

from __future__ import annotations

import random

_NOUNS = ("harbour", "lantern", "letter", "garden", "window", "carriage", "morning", "evening", "river", "sister",
          "brother", "father", "mother", "stranger", "village", "road", "house", "field", "storm", "bell", "door",
          "table", "candle", "fire", "ship", "promise", "secret", "question", "answer", "summer")  # fmt: skip
_VERBS = ("walked", "waited", "listened", "turned", "smiled", "wrote", "carried", "remembered", "watched",
          "opened", "closed", "followed", "found", "lost", "answered", "asked", "crossed", "kept")  # fmt: skip
_ADJECTIVES = ("quiet", "grey", "bright", "old", "small", "distant", "cold", "gentle", "sudden", "long", "warm")
_NAMES = ("Mara", "Tobias", "Ellen", "Jonah", "Ada", "Silas", "Clara", "Hugh")
_SAID = ("said", "asked", "replied", "answered", "cried", "whispered")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_NAMES) if rng.random() < 0.3 else f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}",
             rng.choice(_VERBS)]  # fmt: skip
    for _ in range(rng.randint(2, 12)):
        words.append(rng.choice(_NOUNS) if rng.random() < 0.5 else rng.choice(("the", "a", "and", "of", "by")))
    return " ".join(words) + rng.choice((".", ".", ".", "!", "?"))


def _dialogue(rng: random.Random) -> str:
    line = " ".join(rng.choice(_NOUNS + _VERBS + _ADJECTIVES) for _ in range(rng.randint(2, 10))).capitalize()
    if rng.random() < 0.5:
        return f'"{line}{rng.choice(("?", "!", "."))}"'
    return f'"{line}," {rng.choice(_SAID)} {rng.choice(_NAMES)}.'


def generate_novel(words: int = 120_000, seed: int = 1, chapter_words: int = 2_000) -> str:
    """Markdown: a ``#`` heading per chapter, paragraphs apart."""
    rng = random.Random(seed)
    chapters: list[str] = []
    total = 0
    while total < words:
        paragraphs = [f"# Chapter {len(chapters) + 1}"]
        count = 0
        while count < chapter_words:
            if rng.random() < 0.6:
                paragraph = _dialogue(rng)
            else:
                paragraph = " ".join(_sentence(rng) for _ in range(rng.randint(3, 9)))
            paragraphs.append(paragraph)
            count += len(paragraph.split())
        chapters.append("\n\n".join(paragraphs))
        total += count
    return "\n\n".join(chapters) + "\n"
