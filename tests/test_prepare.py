"""The text normaliser and the pronunciation lexicon, directly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from narrator.document import Block, Chapter
from narrator.prepare import Preparer


def test_typography_becomes_plain_speakable_text():
    text = "\u201cWell\u2026\u201d she said\u00a0\u2014 it\u2019s  a\u00adt\u200bhe\n\tend."
    assert Preparer().text(text) == '"Well..." she said \u2014 it\'s athe end.'


def test_abbreviations_are_spelled_out_but_not_inside_other_words():
    assert Preparer().text("Mr. Ames met Dr. Lo, e.g. at noon.") == "Mister Ames met Doctor Lo, for example at noon."
    assert Preparer().text("Hmr. and xDr. stay") == "Hmr. and xDr. stay"


def test_the_lexicon_replaces_whole_words_once_longest_first():
    preparer = Preparer([("Mara", "MAH-rah"), ("New York", "Noo York"), ("New", "Gnu"), ("rah", "never")])
    assert preparer.text("Mara and Maranne flew to New York, then New Haven.") == (
        "MAH-rah and Maranne flew to Noo York, then Gnu Haven."  # one pass: "MAH-rah" is not then rewritten
    )


def test_a_chapter_keeps_scene_breaks_and_drops_blocks_that_normalise_to_nothing():
    chapter = Chapter(
        "  The\u00a0End ",
        (Block("heading", "The End", 1), Block("paragraph", "\u200b \u00ad"), Block("scene_break"),
         Block("paragraph", "Last  words.")),
    )  # fmt: skip
    prepared = Preparer().chapter(chapter)
    assert prepared.title == "The End"
    assert [b.kind for b in prepared.blocks] == ["heading", "scene_break", "paragraph"]
    assert prepared.blocks[-1].text == "Last words."


@given(st.text(max_size=200))
def test_normalising_is_deterministic_and_idempotent(text):
    preparer = Preparer([("word", "w")])
    once = preparer.text(text)
    assert once == preparer.text(text)
    assert Preparer().text(Preparer().text(text)) == Preparer().text(text)
    assert once == once.strip() and "  " not in once
