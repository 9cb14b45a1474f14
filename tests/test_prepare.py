"""The text normaliser and the pronunciation lexicon, directly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from narrator.text.document import Block, Chapter
from narrator.text.normalise import Preparer


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


def test_a_bare_numeral_chapter_title_is_spoken_as_a_chapter_number():
    def opening(title: str, numbered: bool = True) -> str:
        chapter = Chapter(title, (Block("heading", title, 2), Block("paragraph", "Text."), Block("heading", "II", 3)))
        return " / ".join(b.text for b in Preparer(numbered_titles=numbered).chapter(chapter).blocks)

    assert opening("IV") == "Chapter Four / Text. / II"  # the opening heading only
    assert opening("xxi.") == "Chapter Twenty-one / Text. / II"
    assert opening("12") == "Chapter Twelve / Text. / II"
    assert opening("I Remember") == "I Remember / Text. / II"
    assert opening("1984") == "1984 / Text. / II"
    assert opening("IV", numbered=False) == "IV / Text. / II"


def test_numbered_titles_in_a_numbered_book_only(tmp_path):
    from narrator.job.spec import load_job
    from narrator.synthesis.script import prepare_script
    from tests.conftest import write_job

    (tmp_path / "novel.md").write_text("# I\n\nIt began.\n\n# II\n\nIt went on.\n")
    (tmp_path / "glossary.md").write_text("# A\n\nAnchor.\n\n# B\n\nBeacon.\n\n# C\n\nCurrent.\n\n# D\n\nDune.\n")
    for name, spoken in (("novel", ["Chapter One", "Chapter Two"]), ("glossary", ["A", "B", "C", "D"])):
        script = prepare_script(load_job(write_job(tmp_path, {"sources": [f"{name}.md"], "output": {"dir": "o"}})))
        assert [c.spoken for c in script.chunks if c.kind == "heading"] == spoken
    novel = prepare_script(load_job(write_job(tmp_path, {"sources": ["novel.md"], "output": {"dir": "o"}})))
    assert [c.title for c in novel.chapters] == ["I", "II"]  # the manifest, markers and file names keep them
