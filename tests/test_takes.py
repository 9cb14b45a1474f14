"""Takes of natural length: chunks grouped into requests by their own text (takes.py), and what a run makes of
them through the loopback server: fewer requests, paragraph pacing set from the job, every chunk placed."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.fake_openai import FakeSpeechServer, speech_like
from devtools.novel import generate_novel
from narrator.core import ffmpeg
from narrator.text.chunker import Chunk, Limits, chunk_chapters
from narrator.text.document import Block, Chapter
from narrator.text.takes import Take, group_takes
from tests.conftest import run_cli, write_job

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

KEY = "sk-test-0123456789abcdefghijklmnop"
ROOMY = Limits(1_000_000, 1_000_000)  # where the input limits never bind
API = Limits(4096, 2000)

words = st.sampled_from("the gull said lantern tide Mara waited quietly . , ! ?".split())
paragraphs = st.lists(st.lists(words, min_size=1, max_size=120).map(" ".join), min_size=1, max_size=60)


def chapters_of(texts: list[str], scene_break_at: int | None = None) -> list[Chapter]:
    blocks = [Block("heading", "One", 1), *(Block("paragraph", t) for t in texts)]
    if scene_break_at is not None:
        blocks.insert(scene_break_at + 1, Block("scene_break"))
    return [Chapter("One", tuple(blocks)), Chapter("Two", (Block("heading", "Two", 1), Block("paragraph", "End.")))]


def takes_of(texts: list[str], limits: Limits = ROOMY, target: int = 300) -> list[Take]:
    return group_takes(chunk_chapters(chapters_of(texts), limits), limits, target)


@settings(max_examples=200, deadline=None)
@given(paragraphs, st.data())
def test_a_one_word_edit_changes_at_most_two_takes_and_nothing_else(texts, data):
    before = takes_of(texts)
    k = data.draw(st.integers(0, len(texts) - 1))
    edited = [*texts]
    edited[k] = texts[k] + " indeed"
    after = takes_of(edited)
    assert len({t.text for t in after} - {t.text for t in before}) <= 2
    assert takes_of(texts) == before  # the same text groups the same way every time


@settings(max_examples=200, deadline=None)
@given(paragraphs, st.integers(0, 59), st.sampled_from([0, 40, 300, 2000]))
def test_takes_tile_the_chunks_in_order_within_limits_and_structure(texts, scene_at, target):
    limits = Limits(400, 120)
    chunks = chunk_chapters(chapters_of(texts, min(scene_at, len(texts))), limits)
    takes = group_takes(chunks, limits, target)
    assert [c for t in takes for c in t.chunks] == chunks  # nothing lost, nothing reordered
    for take in takes:
        assert len({c.chapter for c in take.chunks}) == 1
        assert all(c.gap != "scene_break" for c in take.chunks[1:])  # never across a scene break
        assert all(c.kind != "heading" for c in take.chunks[1:])  # a heading opens its take
        assert len(take.chunks) == 1 or (take.chars <= limits.max_chars and take.tokens <= limits.max_tokens)
    if target == 0:
        assert len(takes) == len(chunks)


def novel_chapters(words: int) -> list[Chapter]:
    chapters = []
    for text in generate_novel(words, seed=4).split("\n\n# "):
        title, *paras = text.split("\n\n")
        title = title.lstrip("# ")
        chapters.append(Chapter(title, (Block("heading", title, 1), *(Block("paragraph", p) for p in paras))))
    return chapters


def one_word_edit(chapter: Chapter, rng: random.Random) -> Chapter:
    """A word inserted, deleted or replaced somewhere in one of the chapter's paragraphs."""
    blocks = list(chapter.blocks)
    b = rng.randrange(1, len(blocks))
    words = blocks[b].text.split(" ")
    at, how = rng.randrange(len(words)), rng.randrange(3)
    if how == 0:
        words.insert(at, "indeed")
    elif how == 1 and len(words) > 1:
        del words[at]
    else:
        words[at] = "lantern"
    blocks[b] = Block("paragraph", " ".join(words))
    return Chapter(chapter.title, tuple(blocks))


def test_a_novel_needs_a_fraction_of_the_requests_and_edits_stay_local():
    """A generated novel (six in ten paragraphs short dialogue): under a quarter of its paragraphs as requests,
    all within the API's limits; 600 random one-word edits change one take, or two where the edited paragraph's
    own cut comes or goes (under 3 %), and three only where the edit makes a group the limits cut differently
    (takes.py measured 0.5 in 1 000; grouping as before this test was written: 5 in 1 000 changed three or four
    takes, and 9 % two)."""
    chapters = novel_chapters(40_000)
    chunks = chunk_chapters(chapters, API)
    takes = group_takes(chunks, API, 1800)
    paragraph_count = sum(len(c.blocks) - 1 for c in chapters)
    assert len(takes) * 4 <= paragraph_count
    assert all(t.chars <= API.max_chars and t.tokens <= API.max_tokens for t in takes)
    rng = random.Random(7)
    before = [{t.text for t in group_takes(chunk_chapters([c], API), API, 1800)} for c in chapters]
    changed = Counter()
    for _ in range(600):
        c = rng.randrange(len(chapters))
        again = group_takes(chunk_chapters([one_word_edit(chapters[c], rng)], API), API, 1800)
        changed[len({t.text for t in again} - before[c])] += 1
    assert max(changed) <= 3 and changed[3] <= 1 and changed[2] <= 18, changed


def story(folder: Path) -> list[str]:
    rng = random.Random(5)
    texts = [f"Line {i} {rng.choice(['said Mara.', 'asked Jonah?', 'the tide turned.'])}" for i in range(24)]
    (folder / "story.md").write_text("# Story\n\n" + "\n\n".join(texts) + "\n", encoding="utf-8")
    return texts


def run_story(folder: Path, server: FakeSpeechServer, **extra) -> dict:
    spec = {"sources": ["story.md"], "voice": {"provider": "openai", "base_url": server.url},
            "output": {"dir": "out", "formats": ["m4b", "srt"]}, "cache": "cache", **extra}  # fmt: skip
    result = run_cli("run", str(write_job(folder, spec)), env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    return json.loads((folder / "out" / "manifest.json").read_text())


def sound_onsets(pcm: bytes, rate: int, gap: float) -> list[float]:
    """Where sound begins after each silence of at least ``gap`` seconds (and at the start), in 10 ms frames."""
    frame = rate // 100
    samples = np.frombuffer(pcm, dtype="<i2")
    frames = samples[: len(samples) // frame * frame].astype(float).reshape(-1, frame)
    loud = np.sqrt((frames**2).mean(axis=1)) > 300
    onsets, quiet = [], gap * 100
    for i, is_loud in enumerate(loud):
        if is_loud and quiet >= gap * 100:
            onsets.append(i / 100)
        quiet = 0 if is_loud else quiet + 1
    return onsets


def test_grouped_takes_are_placed_paragraph_by_paragraph_with_the_jobs_pauses(tmp_path):
    """24 one-line paragraphs in a handful of requests. In the book each paragraph's sound begins where the
    manifest places it (the seams were found in the take's own paragraph pauses), and the silence between two
    paragraphs is the job's pause, not the voice's: measured by decoding the M4B."""
    texts = story(tmp_path)
    pauses = {"chapter_start": 0.5, "after_heading": 0.8, "paragraph": 1.2}  # the fake voice pauses 0.55 s
    with FakeSpeechServer(KEY) as server:
        manifest = run_story(tmp_path, server, pauses=pauses, chunking={"target_chars": 400})
        requests = [r for r in server.records if r.status == 200]
    assert len(requests) <= 6 and all("\n\n" in r.input for r in requests)
    chunks = manifest["chunks"]
    assert len(chunks) == 25 and len(manifest["takes"]) == len(requests)
    assert {c["take"] for c in chunks} == {t["id"] for t in manifest["takes"]}
    audio = ffmpeg.decode(tmp_path / "out" / "Story.m4b", 24_000)
    heard = sound_onsets(audio.pcm, 24_000, 0.7)  # only the job's pauses are this long
    assert len(heard) == len(chunks)
    # a placement starts TRIM_MARGIN_MS before its sound
    errors = [abs(h - (c["offset"] + 0.03)) for h, c in zip(heard, chunks, strict=True)]
    assert max(errors) <= 0.04, errors  # measured: median 0 ms, worst 30 ms (10 ms frames, AAC)
    cues = (tmp_path / "out" / "Story.srt").read_text().count(" --> ")
    assert cues == 1 + sum(text.count(".") + text.count("?") for text in texts)


def test_an_edit_asks_again_for_its_take_only_and_a_rerun_for_nothing(tmp_path):
    texts = story(tmp_path)
    with FakeSpeechServer(KEY) as server:
        first = run_story(tmp_path, server, chunking={"target_chars": 400})
        count = len(server.records)
        run_story(tmp_path, server, chunking={"target_chars": 400})
        assert len(server.records) == count  # unchanged: nothing asked
        book = tmp_path / "story.md"
        book.write_text(book.read_text().replace(texts[10], texts[10] + " Again"), encoding="utf-8")
        second = run_story(tmp_path, server, chunking={"target_chars": 400})
        asked = server.records[count:]
    assert 1 <= len(asked) <= 2 and any("Again" in r.input for r in asked)
    kept = {t["id"] for t in first["takes"]} & {t["id"] for t in second["takes"]}
    assert len(kept) >= len(first["takes"]) - 2


def test_a_take_without_a_pause_at_a_seam_is_never_cut_into_sound(tmp_path):
    """Where no pause lies near a paragraph seam, the take runs on: its samples reach the chapter whole."""
    from narrator.build.assemble import take_parts

    rate = 24_000
    first, second = "One two three four.", "Five six seven eight."
    body = speech_like(f"{first} {second}")  # no paragraph pause: one breath
    group = [_chunk("a", first, "chapter_start"), _chunk("b", second, "paragraph")]
    parts = take_parts(group, body, rate)
    assert b"".join(part for _, part, _ in parts) == body and [silent for *_, silent in parts] == [True, False]
    paused = speech_like(first) + b"\x00\x00" * rate + speech_like(second)
    parts = take_parts(group, paused, rate)
    assert [silent for *_, silent in parts] == [True, True]
    # the first paragraph ends TRIM_MARGIN_MS into the pause: its words, their 0.06 s tail cut to 0.03 s
    assert abs(len(parts[0][1]) / 2 - (len(speech_like(first)) / 2 - 0.03 * rate)) <= rate // 100


def _chunk(chunk_id: str, text: str, gap: str) -> Chunk:
    return Chunk(chunk_id, 0, 0, 0, "paragraph", gap, text, 5)  # type: ignore[arg-type]


def test_long_chapters_are_cut_into_parts_between_takes_only(tmp_path):
    """output.max_file_minutes with grouped takes: a part begins where a take begins (where assembly set a pause
    from the job), never inside a take whose seam may run on uncut; each part within the limit."""
    story(tmp_path)
    with FakeSpeechServer(KEY) as server:
        output = {"dir": "out", "formats": ["mp3"], "max_file_minutes": 0.25}
        manifest = run_story(tmp_path, server, chunking={"target_chars": 120}, output=output)
    takes = {t["id"]: t for t in manifest["takes"]}
    (chapter,) = manifest["chapters"]
    assert len(chapter["parts"]) >= 2 and len(takes) > len(chapter["parts"])
    first_chunks = {t["chunks"][0] for t in takes.values()}
    assert all(part["first_chunk"] in first_chunks for part in chapter["parts"])
    for part in chapter["parts"]:
        duration = ffmpeg.decode(tmp_path / "out" / "chapters" / f"{part['name']}.mp3", 24_000).duration
        assert duration <= 15.0


def test_the_progress_display_keeps_moving_through_the_encoding(tmp_path):
    """After the last take, a second bar counts the audio files made: the display does not sit at 100 %."""
    story(tmp_path)
    with FakeSpeechServer(KEY) as server:
        spec = {"sources": ["story.md"], "voice": {"provider": "openai", "base_url": server.url},
                "output": {"dir": "out", "formats": ["m4b", "mp3"]}, "cache": "cache"}  # fmt: skip
        job = write_job(tmp_path, spec)
        result = run_cli("run", str(job), "--progress", env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    assert "narrating: 100%" in result.stderr and "25/25" in result.stderr
    assert "encoding: 100%" in result.stderr and "2/2" in result.stderr  # the M4B and the chapter's MP3
    stages = json.loads((tmp_path / "out" / "report.json").read_text())["stage_seconds"]
    assert {"assembly", "encoding", "book_encoding"} <= set(stages)  # chapter files and the book apart
