"""Books as real toolchains make them (tests/toolchains.py): the chapters, their titles and the exact text that
will be spoken, prepared as a run prepares it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from narrator.job.spec import load_job
from narrator.synthesis.script import prepare_script
from tests import toolchains
from tests.books import sentence as S
from tests.conftest import run_cli, write_job


def spoken(book: Path, **source: object) -> list[tuple[str, list[str]]]:
    job = write_job(book.parent, {"sources": [{"path": book.name, **source}], "output": {"dir": "out"}})
    script = prepare_script(load_job(job))
    return [(c.title, [b.text if b.kind != "scene_break" else "<break>" for b in c.blocks]) for c in script.chapters]


def not_read(book: Path) -> tuple[str, ...]:
    job = write_job(book.parent, {"sources": [book.name], "output": {"dir": "out"}})
    return prepare_script(load_job(job)).document.dropped


POEM = ["The harbour light is burning low, and every gull has gone to rest", "The tide will turn, before the dawn."]


def test_standard_ebooks(tmp_path):
    book = toolchains.standard_ebooks(tmp_path / "se.epub")
    assert spoken(book) == [
        ("I", ["Chapter One", S(1), S(2), *POEM]),
        ("II", ["Chapter Two", S(3), S(4)]),
    ]
    assert spoken(book, notes="end_of_chapter") == [
        ("I", ["Chapter One", S(1), S(2), *POEM, "Notes", S(5)]),
        ("II", ["Chapter Two", S(3), S(4), "Notes", S(6)]),
    ]
    assert not_read(book) == (
        "se.epub: 3 headings with no text under them: Titlepage, Imprint, Colophon",
        "se.epub: Endnotes: only notes (notes: skip)",
    )


def test_gutenberg_epub2(tmp_path):
    book = toolchains.gutenberg_epub2(tmp_path / "pg.epub")
    stanzas = [
        "The lantern swings above the quay, and rope and oar lie still,",
        "The keeper climbs the stair, to light the lamp again.",
    ]
    assert spoken(book) == [
        ("CHAPTER I.", ["CHAPTER I.", f"{S(1)} {S(2)}", *stanzas, "The light on the rock."]),
        ("CHAPTER II.", ["CHAPTER II.", S(3), S(4)]),
    ]
    with_notes = spoken(book, notes="end_of_chapter", images="alt")
    assert with_notes[0][1][-4:] == ["A lighthouse on a rock", "The light on the rock.", "Notes", S(7)]


def test_calibre_split_files(tmp_path):
    book = toolchains.calibre_split(tmp_path / "calibre.epub")
    assert spoken(book) == [
        ("Chapter 1", ["Chapter 1", S(1), S(2), S(3)]),
        ("Chapter 2", ["Chapter 2", S(4), S(5)]),
    ]


def test_pandoc(tmp_path):
    book = toolchains.pandoc(tmp_path / "pandoc.epub")
    table = ["Boat: Gull; Crew: three.", "Boat: Tern; Crew: five."]
    assert spoken(book) == [
        ("The Harbour", ["The Harbour", S(1), *table, f"1. {S(2)}", f"2. {S(3)}"]),
        ("The Light", ["The Light", S(4)]),
    ]
    notes = spoken(book, notes="end_of_chapter", tables="skip")
    assert notes[0][1] == ["The Harbour", S(1), "A table of 2 rows is not read.", f"1. {S(2)}", f"2. {S(3)}",
                           "Notes", S(5)]  # fmt: skip


def test_indesign_nested_parts(tmp_path):
    """A part page holding only its title opens the part's first chapter: heard, never a chapter of its own."""
    book = toolchains.indesign_nested_parts(tmp_path / "indesign.epub")
    assert spoken(book) == [
        ("Tides", ["Part One: Water", "Tides", S(1)]),
        ("Ropes", ["Ropes", S(2)]),
        ("Cliffs", ["Part Two: Stone", "Cliffs", S(3)]),
        ("Paths", ["Paths", S(4)]),
    ]


def test_gutenberg_plain_text(tmp_path):
    book = toolchains.gutenberg_text(tmp_path / "pg.txt")
    assert spoken(book) == [
        ("CHAPTER I: The Tide", ["CHAPTER I: The Tide", S(1), "The light on the rock.", S(2)]),
        ("CHAPTER II: The Light", ["CHAPTER II: The Light", S(3)]),
    ]
    assert not_read(book) == (
        "pg.txt: before the first chapter (a title page?): HARBOUR",
        "pg.txt: a table of contents",
    )
    # its footnote, read after the chapter whose [1] points to it
    assert spoken(book, notes="end_of_chapter")[0][1][-2:] == ["Notes", S(7)]


@pytest.mark.slow
@pytest.mark.parametrize("key, value", [("images", "all"), ("notes", "footer"), ("tables", True)])
def test_reading_choices_are_checked(tmp_path, key, value, cli):
    (tmp_path / "a.md").write_text("# One\n\nText.\n")
    job = write_job(tmp_path, {"sources": [{"path": "a.md", key: value}], "output": {"dir": "out"}})
    result = cli("validate", str(job))
    assert result.returncode == 2
    assert f"sources[0].{key}:" in result.stderr and "Traceback" not in result.stderr


def test_verse_one_line_per_element_is_read_a_stanza_per_block(tmp_path):
    """Scholarly HTML sets a poem one <div> per line with its line numbers in the margin: a stanza is one block
    (one request, not one per line); the numbers, the page break and the page number are never read."""
    lines = [f"{S(i)[:-1]}" for i in range(1, 9)]
    stanza = "".join(f'<div class="line">{line}<span class="lnum">{n * 5}</span></div>' for n, line in
                     enumerate(lines[:4], 1))  # fmt: skip
    second = "<br/>".join(lines[4:])
    page = (
        f'<h1>Verses</h1><div class="linegroup">{stanza}</div><span epub:type="pagebreak" title="12">12</span>'
        f'<div role="doc-pagebreak">13</div><p class="stanza">{second}</p><p>{S(20)}</p>'
        f'<figure><img src="x.png" alt="An image"/><figcaption>{S(21)}</figcaption></figure>'
    )
    (tmp_path / "poem.html").write_text(f"<html><body>{page}</body></html>")
    book = tmp_path / "poem.html"
    assert spoken(book) == [("Verses", ["Verses", ", ".join(lines[:4]), ", ".join(lines[4:]), S(20), S(21)])]
    assert spoken(book, images="skip")[0][1][-1] == S(20)
    assert spoken(book, images="alt")[0][1][-2:] == ["An image", S(21)]


@pytest.mark.slow
def test_a_sample_is_built_beside_the_book_and_never_replaces_it(tmp_path, cli):
    """`run --chapters` / `--sample`: a quick listen in <output.dir>/sample/; the full build is neither replaced
    nor made stale, and its takes are the sample's (one cache)."""
    book = toolchains.indesign_nested_parts(tmp_path / "book.epub")
    job = write_job(tmp_path, {"sources": [book.name], "output": {"dir": "out", "formats": ["mp3"]}})
    planned = json.loads(cli("plan", str(job), "--json", "--chapters", "2-3").stdout)
    assert [c["title"] for c in planned["chapters"]] == ["Ropes", "Cliffs"]
    assert planned["chapters"][1]["opening"].startswith("Part Two: Stone Cliffs")
    sample = cli("run", str(job), "--chapters", "Cliffs", "--no-progress")
    assert sample.returncode == 0, sample.stderr
    manifest = json.loads((tmp_path / "out" / "sample" / "manifest.json").read_text())
    assert [c["title"] for c in manifest["chapters"]] == ["Cliffs"]
    assert not (tmp_path / "out" / "manifest.json").exists()
    full = cli("run", str(job), "--no-progress")
    assert full.returncode == 0, full.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["chunks"]["reused"] == 3  # the sample's takes: "Part Two: Stone", "Cliffs" and its paragraph
    assert (tmp_path / "out" / "sample" / "manifest.json").exists()
    short = cli("plan", str(job), "--json", "--sample", "0.05")
    assert [c["title"] for c in json.loads(short.stdout)["chapters"]] == ["Tides"]
    for bad in (["--chapters", "9"], ["--chapters", "Nowhere"], ["--chapters", "0"], ["--sample", "-1"]):
        result = cli("plan", str(job), *bad)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_gutenberg_text_notes_numbered_per_chapter_stay_with_their_chapter(tmp_path):
    book = tmp_path / "notes.txt"
    book.write_text(
        f"CHAPTER I.\n\n{S(1)}[1]\n\n[Footnote 1: {S(2)}]\n\nCHAPTER II.\n\n{S(3)}[1]\n\n[Footnote 1: {S(4)}]\n",
        encoding="utf-8",
    )
    assert spoken(book, notes="end_of_chapter") == [
        ("CHAPTER I", ["CHAPTER I", S(1), "Notes", S(2)]),
        ("CHAPTER II", ["CHAPTER II", S(3), "Notes", S(4)]),
    ]
    assert spoken(book) == [("CHAPTER I", ["CHAPTER I", S(1)]), ("CHAPTER II", ["CHAPTER II", S(3)])]


@pytest.mark.slow
def test_a_title_pages_dedication_and_epigraph_are_listed_or_read(tmp_path):
    book = toolchains.publisher_title_page(tmp_path / "trade.epub")
    chapters = [("Chapter 1", ["Chapter 1", S(1)]), ("Chapter 2", ["Chapter 2", S(2)])]
    assert spoken(book) == chapters
    assert not_read(book) == (
        "trade.epub: title.xhtml (title page): 3 paragraphs not read, starting “For M., who kept the lamp lit.” "
        "(front_matter: read reads them)",
        "trade.epub: copyright.xhtml (copyright-page): not read",
    )
    read = [("Title page", ["Harbour", "by Ann Writer", "For M., who kept the lamp lit.",
                            "The sea keeps what the shore forgets.", "\u2014 an old saying of the quay"])]  # fmt: skip
    assert spoken(book, front_matter="read") == read + chapters
    # the plan says it before anything is spent, and the report after
    plan = run_cli("plan", str(write_job(tmp_path, {"sources": ["trade.epub"], "output": {"dir": "out"}})))
    assert "not read: trade.epub: title.xhtml (title page): 3 paragraphs not read" in plan.stdout, plan.stdout


def test_a_one_file_books_title_page_section_is_listed_or_read(tmp_path):
    page = ('<html><head><title>Harbour</title></head><body><section epub:type="titlepage"><h1>Harbour</h1>'
            "<p>by Ann Writer</p><p>For the keepers of the light.</p></section>"
            f"<h1>Chapter 1</h1><p>{S(1)}</p></body></html>")  # fmt: skip
    book = tmp_path / "one.html"
    book.write_text(page, encoding="utf-8")
    assert spoken(book) == [("Chapter 1", ["Chapter 1", S(1)])]
    assert not_read(book) == (
        "one.html: one.html (title page): 1 paragraph not read, starting “For the keepers of the light.” "
        "(front_matter: read reads it)",
    )
    assert spoken(book, front_matter="read")[0] == (
        "Harbour",
        ["Harbour", "by Ann Writer", "For the keepers of the light."],
    )
