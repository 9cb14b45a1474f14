"""Test books, built for real by devtools.epub. The text is generated here."""

from __future__ import annotations

from pathlib import Path

from devtools.epub import NavPoint, Page, build_epub
from devtools.picture import lighthouse_cover

WORDS = (
    "harbour lantern gull tide rope oar pebble cliff salt mist beacon keeper wave anchor shell dune "
    "current signal compass chart storm calm evening morning light shadow stone path bell wind"
).split()


def sentence(seed: int, length: int = 9) -> str:
    words = [WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(length)]
    return " ".join(words).capitalize() + "."


def paragraph(seed: int, sentences: int = 3) -> str:
    return " ".join(sentence(seed * 11 + i) for i in range(sentences))


def nested_epub3(path: Path) -> Path:
    """EPUB 3: spine order differs from file-name order; a nested nav (a part with chapters); one file
    holding two chapters (split at an anchor); one chapter spanning two files; a cover, a copyright page
    and a footnote that must not be read."""
    pages = [
        Page("z-cover.xhtml", '<img src="images/cover.png" alt="cover"/>', "Cover", epub_type="cover"),
        Page("y-rights.xhtml", "<p>All rights reserved to nobody.</p>", "Rights", epub_type="copyright-page"),
        Page("c-first.xhtml", f"<h1>First Light</h1><p>{paragraph(1)}</p><p>{paragraph(2)}</p>", "First"),
        Page(
            "b-double.xhtml",
            f'<h1 id="s2">Second Tide</h1><p>{paragraph(3)}'
            '<sup><a epub:type="noteref" href="#fn1">1</a></sup></p>'
            f'<aside epub:type="footnote" id="fn1"><p>A footnote that is never read.</p></aside>'
            f'<h1 id="s3">Third Bell</h1><p>{paragraph(4)}</p>',
            "Double",
        ),
        Page("a-long-1.xhtml", f"<h1>Fourth Wind</h1><p>{paragraph(5)}</p>", "Long 1"),
        Page("a-long-2.xhtml", f"<p>{paragraph(6)}</p>", "Long 2"),
    ]
    toc = [
        NavPoint(
            "Part One",
            "c-first.xhtml",
            [NavPoint("First Light", "c-first.xhtml"), NavPoint("Second Tide", "b-double.xhtml#s2")],
        ),
        NavPoint("Third Bell", "b-double.xhtml#s3"),
        NavPoint("Fourth Wind", "a-long-1.xhtml"),
    ]
    return build_epub(
        path,
        title="Test Book Three",
        author="Tess Writer",
        pages=pages,
        toc=toc,
        version=3,
        cover=lighthouse_cover(60, 90),
        landmarks={"cover": "z-cover.xhtml", "copyright-page": "y-rights.xhtml"},
    )


def plain_epub2(path: Path) -> Path:
    """EPUB 2 with an NCX, a guide, a cover given by <meta name="cover">, a non-linear page."""
    pages = [
        Page("titlepage.xhtml", "<h1>Test Book Two</h1><p>by Tom Writer</p>", "Title"),
        Page("ch2.xhtml", f"<h2>Chapter Two</h2><p>{paragraph(8)}</p>", "Two"),
        Page("ch1.xhtml", f"<h2>Chapter One</h2><p>{paragraph(7)}</p>", "One"),
        Page("notes.xhtml", "<p>Notes that are not in the reading order.</p>", "Notes", linear=False),
    ]
    toc = [NavPoint("Chapter Two", "ch2.xhtml"), NavPoint("Chapter One", "ch1.xhtml")]
    return build_epub(
        path,
        title="Test Book Two",
        author="Tom Writer",
        pages=pages,
        toc=toc,
        version=2,
        cover=lighthouse_cover(40, 60),
        landmarks={"title-page": "titlepage.xhtml"},
    )
