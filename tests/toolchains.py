"""EPUBs built the way real toolchains build them: their file layouts, markup, navigation and notes, with
generated text inside (tests.books.sentence). Each builder returns the book's path; the markup patterns are the
toolchains', the words are ours."""

from __future__ import annotations

from pathlib import Path

from devtools.epub import NavPoint, Page, build_epub
from devtools.picture import lighthouse_cover
from tests.books import sentence

S = sentence  # short: S(1) is one generated sentence

# fmt: off


Z3998 = "z3998: http://www.daisy.org/z3998/2012/vocab/structure/#"  # declared on <html>, as Standard Ebooks does


def standard_ebooks(path: Path) -> Path:
    """Standard Ebooks: one file per chapter, chapters titled by roman numerals only, a title page, imprint and
    colophon in the spine, endnotes in their own file with backlinks, a poem as <p> stanzas of <span> lines."""
    chapter = (
        '<section id="chapter-{n}" epub:type="chapter"><h2 epub:type="ordinal z3998:roman">{roman}</h2>'
        '<p>{first}<a href="endnotes.xhtml#note-{n}" id="noteref-{n}" epub:type="noteref">{n}</a></p>'
        "{rest}</section>"
    )
    poem = (
        '<blockquote epub:type="z3998:poem"><p><span>The harbour light is burning low</span><br/>'
        '<span class="i1">and every gull has gone to rest</span></p>'
        "<p><span>The tide will turn</span><br/><span>before the dawn.</span></p></blockquote>"
    )
    pages = [
        Page("titlepage.xhtml", '<section id="titlepage" epub:type="titlepage"><h1>Harbour</h1>'
             "<p>By Ann Writer.</p></section>", "Titlepage", epub_type="frontmatter"),
        Page("imprint.xhtml", f'<section id="imprint" epub:type="imprint"><p>{S(90)}</p></section>', "Imprint"),
        Page("chapter-1.xhtml", chapter.format(n=1, roman="I", first=S(1), rest=f"<p>{S(2)}</p>" + poem), "I",
             epub_type="bodymatter z3998:fiction", prefix=Z3998),
        Page("chapter-2.xhtml", chapter.format(n=2, roman="II", first=S(3), rest=f"<p>{S(4)}</p>"), "II",
             epub_type="bodymatter z3998:fiction", prefix=Z3998),
        Page("endnotes.xhtml", '<section id="endnotes" epub:type="endnotes"><h2 epub:type="title">Endnotes</h2><ol>'
             f'<li id="note-1" epub:type="endnote"><p>{S(5)} <a href="chapter-1.xhtml#noteref-1" '
             'epub:type="backlink">\u21a9</a></p></li>'
             f'<li id="note-2" epub:type="endnote"><p>{S(6)} <a href="chapter-2.xhtml#noteref-2" '
             'epub:type="backlink">\u21a9</a></p></li></ol></section>', "Endnotes", epub_type="backmatter"),
        Page("colophon.xhtml", f'<section id="colophon" epub:type="colophon"><p>{S(91)}</p></section>', "Colophon"),
    ]
    toc = [NavPoint("Titlepage", "titlepage.xhtml"), NavPoint("Imprint", "imprint.xhtml"),
           NavPoint("I", "chapter-1.xhtml"), NavPoint("II", "chapter-2.xhtml"),
           NavPoint("Endnotes", "endnotes.xhtml"), NavPoint("Colophon", "colophon.xhtml")]
    return build_epub(path, title="Harbour", author="Ann Writer", pages=pages, toc=toc, version=3,
                      landmarks={"bodymatter": "chapter-1.xhtml"})


def gutenberg_epub2(path: Path) -> Path:
    """Project Gutenberg's EPUB 2 build: its licence header and footer sections in the first and last files, page
    numbers in the text, a poem of stanzas with margin line numbers, footnotes as classed divs with [1] markers,
    an illustration with a caption."""
    header = (
        '<section class="pg-boilerplate pgheader" id="pg-header"><h2>The Project Gutenberg eBook of Harbour</h2>'
        f"<p>{S(92)}</p></section>"
    )
    footer = f'<section class="pg-boilerplate pgheader" id="pg-footer"><h2>The licence</h2><p>{S(93)}</p></section>'
    ch1 = (
        f'{header}<h2><a id="CHAPTER_I"></a>CHAPTER I.</h2><p>{S(1)} <span class="pagenum"><a id="Page_7">[Pg 7]</a>'
        f'</span>{S(2)}<a id="FNanchor_1_1" href="#Footnote_1_1" class="fnanchor">[1]</a></p>'
        '<div class="poem"><div class="stanza"><span class="i0">The lantern swings above the quay<br/></span>'
        '<span class="i2">and rope and oar lie still, <span class="linenum">5</span><br/></span></div>'
        '<div class="stanza"><span class="i0">The keeper climbs the stair<br/></span>'
        '<span class="i0">to light the lamp again. 10<br/></span></div></div>'
        '<div class="figcenter"><img src="images/i007.jpg" alt="A lighthouse on a rock" />'
        '<p class="caption">The light on the rock.</p></div>'
        '<div class="footnote"><p><a id="Footnote_1_1" href="#FNanchor_1_1"><span class="label">[1]</span></a> '
        f"{S(7)}</p></div>"
    )
    ch2 = f'<h2><a id="CHAPTER_II"></a>CHAPTER II.</h2><p>{S(3)}</p><p>{S(4)}</p>{footer}'
    pages = [Page("8012-h-0.htm.xhtml", ch1, "Harbour"), Page("8012-h-1.htm.xhtml", ch2, "Harbour")]
    toc = [NavPoint("CHAPTER I.", "8012-h-0.htm.xhtml#CHAPTER_I"),
           NavPoint("CHAPTER II.", "8012-h-1.htm.xhtml#CHAPTER_II")]
    return build_epub(path, title="Harbour", author="Ann Writer", pages=pages, toc=toc, version=2)


def calibre_split(path: Path) -> Path:
    """A Calibre conversion: an SVG cover page first in the spine, text in index_split_NNN files where one
    chapter runs over two files, headings as classed paragraphs, the NCX pointing at filepos anchors."""
    cover = (
        '<div class="calibre"><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'version="1.1" width="100%" height="100%" viewBox="0 0 60 90"><image width="60" height="90" '
        'xlink:href="images/cover.png"/></svg></div>'
    )
    pages = [
        Page("titlepage.xhtml", cover, "Cover"),
        Page("index_split_000.html", '<p class="calibre1" id="filepos100"><b class="calibre2">Chapter 1</b></p>'
             f'<p class="calibre3">{S(1)}</p><p class="calibre3">{S(2)}</p>', "Harbour"),
        Page("index_split_001.html", f'<p class="calibre3">{S(3)}</p>'
             f'<p class="calibre1" id="filepos900"><b class="calibre2">Chapter 2</b></p><p class="calibre3">{S(4)}</p>',
             "Harbour"),
        Page("index_split_002.html", f'<p class="calibre3">{S(5)}</p>', "Harbour"),
    ]
    toc = [NavPoint("Chapter 1", "index_split_000.html#filepos100"),
           NavPoint("Chapter 2", "index_split_001.html#filepos900")]
    return build_epub(path, title="Harbour", author="Ann Writer", pages=pages, toc=toc, version=2,
                      cover=lighthouse_cover(60, 90), landmarks={"cover": "titlepage.xhtml"})


def pandoc(path: Path) -> Path:
    """Pandoc's EPUB 3: a title page, numbered section headings, footnotes gathered at the end of the chapter's
    own file in an <aside role="doc-endnotes"> with backlinks, a table and a numbered list."""
    notes = (
        '<aside id="footnotes" class="footnotes footnotes-end-of-section" role="doc-endnotes"><hr/><ol>'
        f'<li id="fn1"><p>{S(5)}<a href="#fnref1" class="footnote-back" role="doc-backlink">\u21a9\ufe0e</a>'
        "</p></li></ol></aside>"
    )
    ch1 = (
        '<section id="the-harbour" class="level1" data-number="1"><h1 data-number="1">The Harbour</h1>'
        f'<p>{S(1)}<a href="#fn1" class="footnote-ref" id="fnref1" role="doc-noteref"><sup>1</sup></a></p>'
        "<table><thead><tr><th>Boat</th><th>Crew</th></tr></thead>"
        "<tbody><tr><td>Gull</td><td>three</td></tr><tr><td>Tern</td><td>five</td></tr></tbody></table>"
        f"<ol><li>{S(2)}</li><li>{S(3)}</li></ol></section>{notes}"
    )
    ch2 = f'<section id="the-light" class="level1" data-number="2"><h1 data-number="2">The Light</h1><p>{S(4)}</p>'
    ch2 += "</section>"
    pages = [
        Page("text/title_page.xhtml", "<h1>Harbour</h1><p>Ann Writer</p>", "Harbour", epub_type="titlepage"),
        Page("text/ch001.xhtml", ch1, "The Harbour", epub_type="bodymatter"),
        Page("text/ch002.xhtml", ch2, "The Light", epub_type="bodymatter"),
    ]
    toc = [NavPoint("The Harbour", "text/ch001.xhtml#the-harbour"),
           NavPoint("The Light", "text/ch002.xhtml#the-light")]
    return build_epub(path, title="Harbour", author="Ann Writer", pages=pages, toc=toc, version=3,
                      landmarks={"titlepage": "text/title_page.xhtml"})


def indesign_nested_parts(path: Path) -> Path:
    """An InDesign export: one file per story, chapters found at _idTextAnchor spans inside it, headings as
    classed paragraphs, part pages holding nothing but the part's title, a nav nested part > chapter."""
    part = '<div class="_idGenObjectStyleOverride-1"><p class="Part-Title" id="_idTextAnchor00{n}">{title}</p></div>'
    story = (
        '<div class="Basic-Text-Frame"><h1 class="Chapter-Head ParaOverride-1" id="_idTextAnchor00{a}">{t1}</h1>'
        '<p class="Body-Text">{s1}</p><h1 class="Chapter-Head" id="_idTextAnchor00{b}">{t2}</h1>'
        '<p class="Body-Text">{s2}</p></div>'
    )
    pages = [
        Page("Harbour-1.xhtml", part.format(n=0, title="Part One: Water"), "Harbour"),
        Page("Harbour-2.xhtml", story.format(a=1, t1="Tides", s1=S(1), b=2, t2="Ropes", s2=S(2)), "Harbour"),
        Page("Harbour-3.xhtml", part.format(n=3, title="Part Two: Stone"), "Harbour"),
        Page("Harbour-4.xhtml", story.format(a=4, t1="Cliffs", s1=S(3), b=5, t2="Paths", s2=S(4)), "Harbour"),
    ]
    toc = [
        NavPoint("Part One: Water", "Harbour-1.xhtml#_idTextAnchor000", [
            NavPoint("Tides", "Harbour-2.xhtml#_idTextAnchor001"),
            NavPoint("Ropes", "Harbour-2.xhtml#_idTextAnchor002"),
        ]),
        NavPoint("Part Two: Stone", "Harbour-3.xhtml#_idTextAnchor003", [
            NavPoint("Cliffs", "Harbour-4.xhtml#_idTextAnchor004"),
            NavPoint("Paths", "Harbour-4.xhtml#_idTextAnchor005"),
        ]),
    ]
    return build_epub(path, title="Harbour", author="Ann Writer", pages=pages, toc=toc, version=3)


def publisher_title_page(path: Path) -> Path:
    """A trade publisher's EPUB 3 (InDesign or Vellum): the title page (a "titlepage" landmark, never narrated)
    also carries the dedication and an epigraph with its attribution; a copyright page; then the chapters."""
    title_page = (
        '<section epub:type="titlepage" class="titlepage"><h1 class="title">Harbour</h1>'
        '<p class="author">by Ann Writer</p><p class="dedication">For M., who kept the lamp lit.</p>'
        '<blockquote class="epigraph"><p>The sea keeps what the shore forgets.</p>'
        '<p class="attribution">— an old saying of the quay</p></blockquote></section>'
    )
    pages = [
        Page("title.xhtml", title_page, "Harbour"),
        Page("copyright.xhtml", f'<section epub:type="copyright-page"><p>{S(92)}</p></section>', "Copyright"),
        Page("ch1.xhtml", f"<h2>Chapter 1</h2><p>{S(1)}</p>", "Chapter 1"),
        Page("ch2.xhtml", f"<h2>Chapter 2</h2><p>{S(2)}</p>", "Chapter 2"),
    ]
    toc = [NavPoint("Chapter 1", "ch1.xhtml"), NavPoint("Chapter 2", "ch2.xhtml")]
    return build_epub(path, title="Harbour", author="Ann Writer", pages=pages, toc=toc, version=3,
                      landmarks={"titlepage": "title.xhtml", "copyright-page": "copyright.xhtml",
                                 "bodymatter": "ch1.xhtml"})


def gutenberg_text(path: Path) -> Path:
    """Project Gutenberg's plain-text build: licence header and footer, Title/Author fields, a table of contents,
    hard-wrapped paragraphs, an illustration, a footnote and its marker, _italics_."""
    first, second = S(1), S(2)
    wrapped = first.replace(" ", "\n", 1)  # hard-wrapped
    path.write_text(
        "The Project Gutenberg eBook of Harbour\n\nTitle: Harbour\n\nAuthor: Ann Writer\n\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK HARBOUR ***\n\n\n"
        "HARBOUR\n\nCONTENTS\n\n CHAPTER I. The Tide\n CHAPTER II. The Light\n\n\n"
        f"CHAPTER I.\nThe Tide\n\n{wrapped}\n\n[Illustration: The light on the rock.]\n\n"
        f"_{second}_[1]\n\n[Footnote 1: {S(7)}]\n\n"
        f"CHAPTER II.\nThe Light\n\n{S(3)}\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK HARBOUR ***\n\nThe licence follows.\n",
        encoding="utf-8",
    )
    return path
