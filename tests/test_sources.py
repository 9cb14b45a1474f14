import zipfile
from pathlib import Path

import pytest

from devtools.epub import NavPoint, Page, build_epub
from narrator.core.errors import SourceError
from narrator.job.spec import SourceSpec
from narrator.text.document import ReadOptions
from narrator.text.sources import load_document
from narrator.text.sources.epub import read_epub
from narrator.text.sources.html import read_html
from narrator.text.sources.markdown import read_markdown
from narrator.text.sources.text import read_text
from tests.books import nested_epub3, paragraph, plain_epub2


def texts(chapter):
    return [b.text for b in chapter.blocks if b.kind != "scene_break"]


def test_epub3_follows_spine_and_nav_not_file_names(tmp_path):
    doc = read_epub(nested_epub3(tmp_path / "book.epub"))
    assert doc.title == "Test Book Three" and doc.author == "Tess Writer" and doc.language == "en"
    # the part entry lands where its first chapter starts, so it adds no chapter of its own
    assert [c.title for c in doc.chapters] == ["First Light", "Second Tide", "Third Bell", "Fourth Wind"]
    first, second, third, fourth = doc.chapters
    assert texts(first) == ["First Light", paragraph(1), paragraph(2)]
    # two chapters in one file, split at the nav anchors; the footnote and its marker are not read
    assert texts(second) == ["Second Tide", paragraph(3)]
    assert texts(third) == ["Third Bell", paragraph(4)]
    # one chapter spanning two files
    assert texts(fourth) == ["Fourth Wind", paragraph(5), paragraph(6)]
    everything = " ".join(t for c in doc.chapters for t in texts(c))
    assert "footnote" not in everything and "rights" not in everything
    assert doc.cover is not None and doc.cover.media_type == "image/png"


def test_epub2_ncx_guide_and_meta_cover(tmp_path):
    doc = read_epub(plain_epub2(tmp_path / "two.epub"))
    # spine order (ch2 before ch1), the title page skipped by the guide, the linear="no" page skipped
    assert [c.title for c in doc.chapters] == ["Chapter Two", "Chapter One"]
    assert texts(doc.chapters[0]) == ["Chapter Two", paragraph(8)]
    assert doc.cover is not None and doc.cover.data.startswith(b"\x89PNG")


def test_epub_without_navigation_uses_headings(tmp_path):
    from devtools.epub import Page, build_epub

    path = build_epub(
        tmp_path / "nonav.epub",
        title="No Nav",
        author="X",
        pages=[Page("b.xhtml", "<h2>Alpha</h2><p>One.</p>"), Page("a.xhtml", "<h2>Beta</h2><p>Two.</p>")],
        toc=[],
        version=2,
    )
    doc = read_epub(path)
    assert [c.title for c in doc.chapters] == ["Alpha", "Beta"]


def test_epub_xml_external_entities_are_refused(tmp_path):
    path = tmp_path / "evil.epub"
    evil_container = (
        '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="&x;"/></rootfiles></container>'
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/container.xml", evil_container)
    with pytest.raises(SourceError, match="unsafe XML"):
        read_epub(path)


def test_not_a_zip_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.epub"
    path.write_bytes(b"this is not a zip")
    with pytest.raises(SourceError, match="not an EPUB"):
        read_epub(path)


def test_markdown_chapters_at_top_level_headings(tmp_path):
    path = tmp_path / "essay.md"
    path.write_text(
        "Intro before any heading.\n\n# One\n\nFirst *para*.\n\n## Sub\n\nSecond.\n\n***\n\nAfter break.\n\n"
        "# Two\n\nLast <b>bold</b> words.\n",
        encoding="utf-8",
    )
    doc = read_markdown(path)
    assert [c.title for c in doc.chapters] == ["Essay", "One", "Two"]
    assert [b.kind for b in doc.chapters[1].blocks] == ["heading", "paragraph", "heading", "paragraph",
                                                        "scene_break", "paragraph"]  # fmt: skip
    assert texts(doc.chapters[1]) == ["One", "First para.", "Sub", "Second.", "After break."]
    assert texts(doc.chapters[2]) == ["Two", "Last bold words."]


def test_html_chapters_at_h1_h2_ignoring_scripts(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Page</title><style>p{}</style><script>var x='no';</script></head><body>"
        "<nav><a href='/'>Home</a></nav><h1>Alpha</h1><p>One<br>two.</p><h2>Beta</h2><p>Three.</p>"
        "<h3>Gamma</h3><p>Four.</p><script>alert('no')</script></body></html>",
        encoding="utf-8",
    )
    doc = read_html(path)
    assert doc.title == "Page"
    assert [c.title for c in doc.chapters] == ["Alpha", "Beta"]
    assert texts(doc.chapters[0]) == ["Alpha", "One two."]
    assert texts(doc.chapters[1]) == ["Beta", "Three.", "Gamma", "Four."]


@pytest.mark.parametrize(
    "heading",
    ["CHAPTER IV", "Chapter 4", "IV.", "Chapter Twelve", "PART II", "Chapter Twenty-One", "BOOK THE FIRST"],
)
def test_text_chapter_lines(tmp_path, heading):
    """A chapter line starts a chapter; the same line with a letter more ("CHAPTER IVX", "Chapter TwelveX",
    "PART IIX") is a paragraph of the chapter before it."""
    path = tmp_path / "book.txt"
    path.write_text(f"{heading}\n\nThe first words.\nStill first.\n\n{heading}X\n\nNot a chapter.\n", encoding="utf-8")
    doc = read_text(path)
    assert [c.title for c in doc.chapters] == [heading.rstrip(".")]
    assert texts(doc.chapters[0])[1:] == ["The first words. Still first.", f"{heading}X", "Not a chapter."]


def test_text_without_chapters_is_one_chapter(tmp_path):
    path = tmp_path / "note.txt"
    path.write_bytes("Caf\xe9 latte.\n\nSecond paragraph.".encode("cp1252"))
    doc = read_text(path)
    assert len(doc.chapters) == 1 and texts(doc.chapters[0]) == ["Café latte.", "Second paragraph."]


def test_load_document_joins_sources_and_speaks_titles(tmp_path):
    md = tmp_path / "a.md"
    md.write_text("Just text, no heading.\n", encoding="utf-8")
    epub = nested_epub3(tmp_path / "b.epub")
    doc = load_document(
        [SourceSpec(path=epub, format="epub"), SourceSpec(path=md, format="markdown", title="Afterword")],
        author="Override",
    )
    assert doc.title == "Test Book Three" and doc.author == "Override"
    assert doc.chapters[-1].title == "Afterword"
    # a chapter that does not open with a heading gets its title spoken
    assert doc.chapters[-1].blocks[0].kind == "heading" and doc.chapters[-1].blocks[0].text == "Afterword"


def test_sample_files_match_their_script(tmp_path):
    from samples.build_samples import build

    build(tmp_path)
    here = Path(__file__).resolve().parent.parent / "samples"
    assert (tmp_path / "lighthouse.epub").read_bytes() == (here / "lighthouse.epub").read_bytes()
    assert (tmp_path / "cover.png").read_bytes() == (here / "cover.png").read_bytes()


def test_a_one_file_book_reads_its_chapters_and_skips_its_title_page_and_notes(tmp_path):
    """One content document holding a title page, the chapters and the rear notes, as some toolchains make
    them: typed sections are skipped by subtree, not the whole document; the nav names the chapters."""
    body = (
        '<section epub:type="titlepage" id="titlepage"><h1>The Quiet Harbour</h1><p>By A. Writer</p></section>'
        '<section epub:type="bodymatter chapter" id="chapter-1"><h2>I</h2>'
        f'<p>{paragraph(1)}<a href="#note-1" id="noteref-1" epub:type="noteref">1</a></p><p>{paragraph(2)}</p>'
        "</section>"
        f'<section epub:type="bodymatter chapter" id="chapter-2"><h2>II</h2><p>{paragraph(3)}</p></section>'
        '<section epub:type="backmatter rearnotes" id="endnotes"><h2>Endnotes</h2><ol>'
        '<li id="note-1"><p>A note nobody should hear. <a href="#noteref-1">↩</a></p></li></ol></section>'
    )
    toc = [NavPoint("Titlepage", "book.xhtml#titlepage"), NavPoint("I", "book.xhtml#chapter-1"),
           NavPoint("II", "book.xhtml#chapter-2"), NavPoint("Endnotes", "book.xhtml#endnotes")]  # fmt: skip
    path = build_epub(tmp_path / "one.epub", title="The Quiet Harbour", author="A. Writer",
                      pages=[Page("book.xhtml", body, "The Quiet Harbour")], toc=toc)  # fmt: skip
    doc = read_epub(path)
    assert [c.title for c in doc.chapters] == ["I", "II"]
    assert [(b.kind, b.text) for b in doc.chapters[0].blocks] == [
        ("heading", "I"), ("paragraph", paragraph(1)), ("paragraph", paragraph(2))
    ]  # fmt: skip
    assert [(b.kind, b.text) for b in doc.chapters[1].blocks] == [("heading", "II"), ("paragraph", paragraph(3))]


def test_markdown_splits_at_the_highest_level_that_gives_chapters(tmp_path):
    """One `#` title over `##` articles (most articles and READMEs): chapters at the articles, the title spoken
    first; `split_at` chooses; an HTML book with h1 chapters and h2 sections splits at h1."""
    md = tmp_path / "charter.md"
    md.write_text(
        "# The Harbour Charter\n\n## Article One\n\nThe keepers keep the light.\n\n### Section 1\n\nAt dusk.\n\n"
        "## Article Two\n\nThe boats come home.\n",
        encoding="utf-8",
    )
    doc = read_markdown(md)
    assert [c.title for c in doc.chapters] == ["Article One", "Article Two"]
    assert [b.text for b in doc.chapters[0].blocks] == [
        "The Harbour Charter", "Article One", "The keepers keep the light.", "Section 1", "At dusk."
    ]  # fmt: skip
    assert [c.title for c in read_markdown(md, ReadOptions(split_at=1)).chapters] == ["The Harbour Charter"]
    by_sections = read_markdown(md, ReadOptions(split_at=3))
    assert [c.title for c in by_sections.chapters] == ["Article One", "Section 1", "Article Two"]
    html = tmp_path / "book.html"
    html.write_text(
        "<h1>One</h1><p>First.</p><h2>A part of one</h2><p>More.</p><h1>Two</h1><p>Second.</p>", encoding="utf-8"
    )
    assert [c.title for c in read_html(html).chapters] == ["One", "Two"]


def test_split_at_is_for_markdown_and_html_only(tmp_path):
    (tmp_path / "a.txt").write_text("Some text.\n")
    (tmp_path / "b.md").write_text("# B\n\nText.\n")
    from narrator.core.errors import JobError
    from narrator.job.spec import load_job
    from tests.conftest import write_job

    spec = {"sources": [{"path": "a.txt", "split_at": 2}, {"path": "b.md", "split_at": 2}], "output": {"dir": "o"}}
    with pytest.raises(JobError) as info:
        load_job(write_job(tmp_path, spec))
    assert [p.split(": ", 1)[1] for p in info.value.problems] == [
        "sources[0].split_at: only Markdown and HTML split at headings, not text"
    ]


GUTENBERG = """\ufeffThe Project Gutenberg eBook of The Quiet Harbour

This ebook is for the use of anyone anywhere at no cost and with almost no restrictions whatsoever.

Title: The Quiet Harbour

Author: A. Writer

Release date: January 1, 2001 [eBook #99999]

*** START OF THE PROJECT GUTENBERG EBOOK THE QUIET HARBOUR ***




CONTENTS

CHAPTER I. The Lamp
CHAPTER II. The Tide
CHAPTER III. The Morning




CHAPTER I.
The Lamp

The keeper climbed the stair with the oil can and a
rag, as he did every evening, and _never_ once looked down.[1]

[Illustration: The keeper at the lamp, drawn by a friend.]

[Footnote 1: He had looked down once, in his first year,
and did not care to again.]


CHAPTER II.
The Tide

The tide came in over the rocks.

[Illustration]


CHAPTER III.
The Morning

Morning came at last.

*** END OF THE PROJECT GUTENBERG EBOOK THE QUIET HARBOUR ***

Section 5. General information about this licence, which nobody wants to hear.
"""


def test_project_gutenberg_plain_text_is_read_without_its_licence_contents_and_markers(tmp_path):
    path = tmp_path / "pg99999.txt"
    path.write_text(GUTENBERG, encoding="utf-8")
    doc = read_text(path)
    assert (doc.title, doc.author) == ("The Quiet Harbour", "A. Writer")
    assert [c.title for c in doc.chapters] == [
        "CHAPTER I: The Lamp",
        "CHAPTER II: The Tide",
        "CHAPTER III: The Morning",
    ]
    assert [b.text for b in doc.chapters[0].blocks] == [
        "CHAPTER I: The Lamp",
        "The keeper climbed the stair with the oil can and a rag, as he did every evening, and never once looked down.",
        "The keeper at the lamp, drawn by a friend.",
    ]
    assert [b.text for b in doc.chapters[1].blocks] == ["CHAPTER II: The Tide", "The tide came in over the rocks."]
    spoken = " ".join(b.text for c in doc.chapters for b in c.blocks)
    assert "licence" not in spoken and "Gutenberg" not in spoken and "Footnote" not in spoken and "_" not in spoken


def test_a_source_title_prefixes_its_chapters_but_never_doubles_one(tmp_path):
    md = tmp_path / "essay.md"
    md.write_text("# On Tides\n\nIntro.\n\n## The ebb\n\nOut it goes.\n", encoding="utf-8")
    titles = [c.title for c in load_document([SourceSpec(path=md, format="markdown", title="On Tides")]).chapters]
    assert titles == ["On Tides", "On Tides: The ebb"]
    one = load_document([SourceSpec(path=md, format="markdown", title="On Tides", split_at=1)]).chapters
    assert [c.title for c in one] == ["On Tides"]


def test_a_source_reads_only_the_chapters_it_names(tmp_path):
    epub = nested_epub3(tmp_path / "b.epub")  # First Light, Second Tide, Third Bell, Fourth Wind

    def titles(chapters: list) -> list[str]:
        return [c.title for c in load_document([SourceSpec(path=epub, format="epub", chapters=chapters)]).chapters]

    assert titles([1, "3-4"]) == ["First Light", "Third Bell", "Fourth Wind"]
    assert titles(["Fourth Wind", "2"]) == ["Second Tide", "Fourth Wind"]  # reading order, never the list's
    with pytest.raises(SourceError, match="no chapter titled 'Fifth'; it has: First Light, Second Tide"):
        titles(["Fifth"])
    with pytest.raises(SourceError, match=r"3-9 is past its last chapter \(4: Fourth Wind\)"):
        titles(["3-9"])


def test_chapter_choices_are_checked_in_the_spec(tmp_path):
    from narrator.core.errors import JobError
    from narrator.job.spec import load_job
    from tests.conftest import write_job

    (tmp_path / "b.md").write_text("# B\n\nText.\n")
    spec = {"sources": [{"path": "b.md", "chapters": [0, "5-2", [1]]}], "output": {"dir": "o"}}
    with pytest.raises(JobError) as info:
        load_job(write_job(tmp_path, spec))
    assert [p.split(": ", 1)[1] for p in info.value.problems] == [
        "sources[0].chapters[0]: chapters count from 1, got 0",
        "sources[0].chapters[1]: a range runs from 1 upward, low to high, got 5-2",
        'sources[0].chapters[2]: a chapter number, a range like "3-5" or a title, got a list',
    ]


_OLD_STYLE_GUTENBERG = """The Project Gutenberg EBook of Harbour Lights, by Ann Writer

Title: Harbour Lights

Author: Ann Writer

*** START OF THIS PROJECT GUTENBERG EBOOK HARBOUR LIGHTS ***

HARBOUR LIGHTS

CONTENTS

CHAPTER I.      The Keeper

CHAPTER II.     The Gull



CHAPTER I.

The keeper climbed the stair at dusk and lit the lamp. The harbour was calm
and the gulls had gone quiet on the rocks.

[Illustration: The keeper at the
lamp, with the harbour below]

He watched the boats come in one by one. [Illustration: A small boat
rounding the point] The last one came in after dark.

CHAPTER II.

A gull sat on the rail all morning and would not move for anyone.

End of Project Gutenberg's Harbour Lights, by Ann Writer

Transcriber's notes: several spellings made consistent.

*** END OF THIS PROJECT GUTENBERG EBOOK HARBOUR LIGHTS ***

This file should be named 1234.txt.
"""


@pytest.mark.parametrize("end_line", [True, False])
def test_an_old_style_gutenberg_text_ends_at_its_footer_and_never_reads_an_illustration(tmp_path, end_line):
    """As older Project Gutenberg texts are published: a contents list of chapter lines, an "End of Project
    Gutenberg's ..." footer with transcriber's notes after it (with or without the *** END line), and
    [Illustration: ...] blocks over several lines, alone and inside a paragraph."""
    text = _OLD_STYLE_GUTENBERG if end_line else _OLD_STYLE_GUTENBERG.replace("*** END OF", "END OF")
    path = tmp_path / "harbour.txt"
    path.write_text(text, encoding="utf-8")
    doc = read_text(path)
    assert [c.title for c in doc.chapters] == ["CHAPTER I", "CHAPTER II"]
    spoken = " ".join(b.text for c in doc.chapters for b in c.blocks)
    assert "Project Gutenberg" not in spoken and "Transcriber" not in spoken and "1234" not in spoken
    # the markup is never read; the captions are (images: caption, the default), each after its paragraph
    assert "Illustration" not in spoken and "[" not in spoken
    texts = [b.text for b in doc.chapters[0].blocks]
    assert texts[2:] == ["The keeper at the lamp, with the harbour below",
                         "He watched the boats come in one by one. The last one came in after dark.",
                         "A small boat rounding the point"]  # fmt: skip
    skipped = read_text(path, ReadOptions(images="skip"))
    assert [b.text for b in skipped.chapters[0].blocks][2:] == [texts[3]]  # images: skip reads no caption
    assert doc.chapters[-1].blocks[-1].text == "A gull sat on the rail all morning and would not move for anyone."
    assert any("table of contents" in d for d in doc.dropped)


def test_a_gutenberg_chapter_title_on_its_own_line_under_the_chapter_line_is_part_of_the_title(tmp_path):
    """Project Gutenberg's texts often set "CHAPTER I." and the chapter's name as two paragraphs. A short first
    paragraph that is a sentence ("Yes.", "He did not come back.") stays a paragraph."""
    path = tmp_path / "pg.txt"
    path.write_text(
        "CHAPTER I.\n\nTHE HARBOUR.\n\nThe boats came in at dusk.\n\n"
        "CHAPTER II.\n\nThe Keeper of the Light\n\nA letter came on Tuesday.\n\n"
        "CHAPTER III.\n\nYes.\n\nShe said it twice.\n\n"
        "CHAPTER IV.\n\nHe did not come back.\n\nNobody asked why.\n",
        encoding="utf-8",
    )
    doc = read_text(path)
    assert [c.title for c in doc.chapters] == [
        "CHAPTER I: THE HARBOUR", "CHAPTER II: The Keeper of the Light", "CHAPTER III", "CHAPTER IV",
    ]  # fmt: skip
    assert [b.text for b in doc.chapters[0].blocks] == ["CHAPTER I: THE HARBOUR", "The boats came in at dusk."]
    assert [b.text for b in doc.chapters[2].blocks] == ["CHAPTER III", "Yes.", "She said it twice."]
    assert [b.text for b in doc.chapters[3].blocks][1] == "He did not come back."
