"""Chapter files over output.max_file_minutes (ACX: 120) are cut into parts at block boundaries."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mutagen.id3 import ID3

from narrator.build.parts import plan_parts
from narrator.core import ffmpeg
from tests.helpers import read_metadata
from tests.test_audiobook_output import build

chunk = st.tuples(st.floats(0.1, 50.0), st.sampled_from([0.3, 0.6, 1.5]), st.booleans())


@given(chunks=st.lists(chunk, min_size=1, max_size=60), limit=st.floats(5.0, 200.0))
def test_parts_tile_the_chapter_in_order_and_stay_under_the_limit(chunks, limit):
    lengths, gaps, blocks = (list(column) for column in zip(*chunks, strict=True))
    gaps[0] = 0.5  # a chapter's first chunk follows its opening pause: the head
    parts = plan_parts(lengths, gaps, blocks, 0.5, 1.5, limit)
    assert parts[0][0] == 0 and parts[-1][1] == len(chunks)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts)) and all(f < e for f, e in parts)
    for first, end in parts:
        length = 0.5 + sum(lengths[first:end]) + sum(gaps[first + 1 : end]) + 1.5
        assert length <= limit + 1e-9 or end == first + 1  # only a single take over the limit can overrun it


def test_parts_are_about_even_and_start_at_blocks():
    # twelve paragraphs of two 10 s chunks each: 246 s in all, under a limit of 100 s
    lengths, gaps, blocks = [10.0] * 24, [0.6, 0.3] * 12, [True, False] * 12
    parts = plan_parts(lengths, gaps, blocks, 0.5, 1.5, 100.0)
    assert len(parts) == 3 and all(blocks[first] for first, _ in parts)
    assert [end - first for first, end in parts] == [8, 8, 8]
    assert plan_parts(lengths, gaps, blocks, 0.5, 1.5, 1000.0) == [(0, 24)]


@pytest.mark.slow
def test_acx_chapters_over_the_limit_are_cut_into_parts_that_pass_every_rule(tmp_path):
    limit = 0.4  # minutes: each chapter of the test book lasts about 40 s
    output = {"formats": ["mp3", "m4b"], "mastering": "acx", "max_file_minutes": limit}
    # a request per paragraph: files are cut only between takes, and this book's chapters are one take each
    out, report, manifest = build(tmp_path, output, chunking={"target_chars": 0})
    assert report["qa"]["pass"], report["qa"]  # head and tail room tone, levels, length: on every part
    chunks = {c["id"]: c for c in manifest["chunks"]}
    names = []
    for chapter in manifest["chapters"]:
        parts = chapter["parts"]
        ids = [c["id"] for c in manifest["chunks"] if c["chapter"] == chapter["number"]]
        assert len(parts) >= 2 and parts[0]["first_chunk"] == ids[0]
        assert parts[0]["start"] == 0 and parts[-1]["end"] == chapter["duration"]
        for before, after in itertools.pairwise(parts):  # cut in the pause before a paragraph: nothing lost
            first = chunks[after["first_chunk"]]
            assert first["piece"] == 0 and after["start"] == first["offset"] and before["end"] <= after["start"]
        for number, part in enumerate(parts, 1):
            path = out / "chapters" / f"{part['name']}.mp3"
            assert part["name"].endswith(f"Chapter {chapter['number']}, part {number} of {len(parts)}")
            head = 0.5 if number > 1 else 0.0  # the chapter's opening and closing pauses, where it was cut
            tail = 1.5 if number < len(parts) else 0.0
            duration = ffmpeg.decode(path, 44_100).duration
            assert abs(duration - (part["end"] - part["start"] + head + tail)) < 0.05, (path.name, duration)
            assert duration <= limit * 60
            assert str(ID3(path)["TIT2"]) == f"Chapter {chapter['number']}, part {number} of {len(parts)}"
            names.append(path.name)
    assert sorted(p.name for p in (out / "chapters").glob("*.mp3")) == sorted(names)
    assert [str(ID3(out / "chapters" / name)["TRCK"]) for name in names] == [
        f"{i}/{len(names)}" for i in range(1, len(names) + 1)
    ]
    # the book keeps one marker per chapter, not per part
    markers = read_metadata(out / "Measured Book.m4b")["chapters"]
    assert [m["title"] for m in markers] == [c["title"] for c in manifest["chapters"]]
