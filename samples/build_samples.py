"""Build samples/lighthouse.epub (and its cover) from the story text below. Deterministic: running it
again gives the same bytes, and a test checks that the committed files match. `make samples` runs it."""

from __future__ import annotations

from pathlib import Path

from devtools.epub import NavPoint, Page, build_epub
from devtools.picture import lighthouse_cover

HERE = Path(__file__).resolve().parent

CHAPTERS = [
    (
        "ch01-arrival.xhtml",
        "The Arrival",
        [
            "Mara reached the island on the last boat of October, with one trunk, a tin of tea and a letter "
            "that said the lamp must never go dark.",
            "The old keeper met her at the jetty. He was thin as a reed and spoke as if every word cost him "
            "a coin. He showed her the oil store, the winding gear and the logbook, then he walked down to "
            "the boat and did not look back.",
            "That night she climbed the hundred and twelve steps three times, just to be sure. From the "
            "gallery the beam swept out across the water, and far away a small ship answered with a single "
            "blink of light.",
        ],
    ),
    (
        "ch02-storm.xhtml",
        "The Storm",
        [
            "The storm came in on the ninth day. It began as a grey smudge on the horizon and by noon the "
            "whole sky was the colour of slate.",
            "Waves struck the rocks so hard that the tower hummed. Mara wound the clockwork every two hours "
            "and wrote the time in the log in careful letters, because careful letters felt like a kind of "
            'courage.<sup><a epub:type="noteref" href="#note1">1</a></sup>',
            "Near midnight the lamp flickered. She did not think; she ran, and her hands found the spare "
            "wick in the dark as if they had always known where it was kept.",
            '<aside epub:type="footnote" id="note1">Keepers were required to log the weather every four hours.</aside>',
        ],
    ),
    (
        "ch03-morning.xhtml",
        "Morning",
        [
            "By dawn the sea was tired. It rolled against the island like a dog that had barked all night "
            "and wanted only to lie down.",
            "A fishing boat came round the point with its nets torn and its crew waving both arms. They had "
            "steered by her light the whole night long.",
            "Mara waved back. Then she went inside, made a pot of tea, and wrote in the log: lamp lit, "
            "storm passed, all well.",
        ],
    ),
]


def _body(title: str, paragraphs: list[str]) -> str:
    parts = []
    for p in paragraphs:
        parts.append(p if p.startswith("<aside") else f"<p>{p}</p>")
    return f'<section epub:type="chapter"><h1>{title}</h1>\n' + "\n".join(parts) + "</section>"


def build(out_dir: Path = HERE) -> Path:
    cover = lighthouse_cover()
    (out_dir / "cover.png").write_bytes(cover)
    pages = [
        Page("cover.xhtml", '<img src="images/cover.png" alt="Cover"/>', "Cover", epub_type="cover"),
        Page(
            "copyright.xhtml",
            "<p>Copyright 2026 the narrator authors. Written for narrator's demo; free to use.</p>",
            "Copyright",
            epub_type="frontmatter copyright-page",
        ),
        *(Page(name, _body(title, paras), title) for name, title, paras in CHAPTERS),
    ]
    toc = [
        NavPoint(
            "Part One: The Light",
            "ch01-arrival.xhtml",
            [NavPoint("The Arrival", "ch01-arrival.xhtml"), NavPoint("The Storm", "ch02-storm.xhtml")],
        ),
        NavPoint("Morning", "ch03-morning.xhtml"),
    ]
    return build_epub(
        out_dir / "lighthouse.epub",
        title="The Lighthouse Keeper",
        author="A. Writer",
        pages=pages,
        toc=toc,
        cover=cover,
        landmarks={
            "cover": "cover.xhtml",
            "copyright-page": "copyright.xhtml",
            "bodymatter": "ch01-arrival.xhtml",
        },
    )


if __name__ == "__main__":
    print(build())
