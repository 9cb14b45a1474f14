"""The run records: one reader of the previous manifest, tolerant of every earlier version and of garbage;
formats changed between runs in any order never break a build."""

from __future__ import annotations

import itertools
import json

import pytest

from narrator import load_job, run_job
from narrator.core.audio import Audio
from narrator.core.records import SCHEMA, Manifest, read_manifest
from narrator.synthesis.cache import TakeCache
from tests.conftest import write_job
from tests.helpers import put_take

# A manifest as narrator wrote it before records had a schema number (shape of 1a7a0b3), cut to one chunk.
VERSION_1 = {
    "title": "Old Book",
    "author": None,
    "provider": {"provider": "local", "voice": "en_US-joe-medium"},
    "limits": {"max_chars": 4096, "max_tokens": 2000},
    "pauses": {"chapter_start": 0.5, "after_heading": 1.0, "paragraph": 0.6, "chunk": 0.3, "scene_break": 1.5,
               "chapter_end": 1.5},
    "chapters": [{"number": 1, "title": "One", "start": 0.0, "duration": 3.2}],
    "outputs": ["Old Book.m4b"],
    "fingerprints": {"Old Book.m4b": "0123456789abcdef0123"},
    "qa": [{"file": "Old Book.m4b", "duration_seconds": 3.2, "integrated_lufs": -16.1, "true_peak_dbtp": -1.6,
            "rules": {"loudness": True, "true_peak": True}, "pass": True}],
    "chunks": [{"id": "cabc", "chapter": 1, "block": 0, "piece": 0, "kind": "paragraph", "text": "Hello.",
                "tokens": 2, "characters": 6, "cache_key": "ab" * 32, "audio": "x.wav", "status": "cached",
                "attempts": 0, "offset": 0.5, "duration": 1.2, "flags": []}],
}  # fmt: skip


def test_a_version_1_manifest_is_read_with_every_key(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(VERSION_1))
    manifest = read_manifest(path)
    assert manifest is not None
    assert (
        manifest.qa[0].passed
        and manifest.chunks[0].offset == 0.5
        and manifest.fingerprints == VERSION_1["fingerprints"]
    )
    written = manifest.to_json()
    # later versions only add keys: everything version 1 had is there, with the same values
    assert {k: v for k, v in written.items() if k != "schema"} == VERSION_1
    assert written["schema"] == SCHEMA


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff garbage",
        b'{"title": "cut off',
        b"[]",
        b'{"fingerprints": {}}',
        json.dumps({**VERSION_1, "chunks": "not a list"}).encode(),
        json.dumps({**VERSION_1, "schema": SCHEMA + 1}).encode(),  # from a newer narrator: not ours to trust
        b"[" * 100_000,
    ],
    ids=["empty", "binary", "truncated", "a list", "no chunks", "wrong type", "newer schema", "deeply nested"],
)
def test_a_damaged_manifest_means_no_previous_build(tmp_path, content):
    path = tmp_path / "manifest.json"
    path.write_bytes(content)
    assert read_manifest(path) is None


def test_a_missing_or_unreadable_manifest_means_no_previous_build(tmp_path):
    assert read_manifest(tmp_path / "absent.json") is None
    (tmp_path / "manifest.json").mkdir()
    assert read_manifest(tmp_path / "manifest.json") is None


def test_manifest_rejects_nothing_it_wrote(tmp_path):
    manifest = Manifest.model_validate(VERSION_1)
    manifest.write(tmp_path / "m.json")
    assert read_manifest(tmp_path / "m.json") == manifest


FORMAT_SETS = [("m4b", "mp3"), ("m4b", "srt"), ("opus", "vtt"), ("mp3-book",)]


@pytest.mark.slow
def test_changing_formats_between_runs_in_every_order_never_breaks(tmp_path):
    """Every ordered pair of format sets, mastering on (QA rows carried over from the run before): each run
    exits 0, writes exactly its own formats' files, and keeps QA rows only for files that exist."""
    (tmp_path / "book.md").write_text("# One\n\nA short first paragraph.\n\n# Two\n\nAnd a second one.\n")
    # a walk through all 12 ordered pairs of the four sets (an Euler circuit of the complete digraph)
    order = [0, 1, 0, 2, 0, 3, 1, 2, 1, 3, 2, 3, 0]
    assert {(a, b) for a, b in itertools.pairwise(order)} == {
        (a, b) for a in range(4) for b in range(4) if a != b
    }  # fmt: skip
    for step in order:
        formats = list(FORMAT_SETS[step])
        spec = {"sources": ["book.md"], "output": {"dir": "out", "formats": formats, "mastering": "podcast"}}
        result = run_job(load_job(write_job(tmp_path, spec)), progress=False)
        assert result.exit_code == 0, (formats, result.message)
        manifest = read_manifest(tmp_path / "out" / "manifest.json")
        assert manifest is not None
        on_disk = {
            p.name
            for p in (tmp_path / "out").rglob("*")
            if p.is_file() and p.suffix != ".json" and ".narrator" not in p.parts
        }
        suffixes = {"." + f.split("-")[0] for f in formats}
        assert {n.rsplit(".", 1)[-1] for n in on_disk} == {s[1:] for s in suffixes}, (formats, on_disk)
        assert {q.file for q in manifest.qa} <= on_disk
        audio = [n for n in on_disk if not n.endswith((".srt", ".vtt"))]
        assert sorted(q.file for q in manifest.qa) == sorted(audio), (formats, manifest.qa)


@pytest.mark.slow
def test_an_old_manifest_beside_the_output_does_not_break_a_run(tmp_path):
    (tmp_path / "book.md").write_text("# One\n\nA short paragraph.\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(VERSION_1))
    spec = {"sources": ["book.md"], "output": {"dir": "out", "formats": ["m4b"], "mastering": "podcast"}}
    result = run_job(load_job(write_job(tmp_path, spec)), progress=False)
    assert result.exit_code == 0
    manifest = read_manifest(tmp_path / "out" / "manifest.json")
    assert manifest is not None and [q.file for q in manifest.qa] == ["One.m4b"]


@pytest.mark.slow
def test_a_build_removes_only_the_files_its_records_name(tmp_path):
    """A renamed chapter's old file goes (the last manifest lists it); a user's own files in the same folders
    stay, whatever their names."""
    book = tmp_path / "book.md"
    book.write_text("# One\n\nA short paragraph.\n\n# Two\n\nAnother one.\n")
    chapters = tmp_path / "out" / "chapters"
    chapters.mkdir(parents=True)
    mine = [chapters / "01 My own recording.mp3", chapters / "02 Two.opus", tmp_path / "out" / "notes.txt"]
    for path in mine:
        path.write_bytes(b"the user's")
    spec = {"sources": ["book.md"], "output": {"dir": "out", "formats": ["mp3"]}}
    assert run_job(load_job(write_job(tmp_path, spec)), progress=False).exit_code == 0
    assert (chapters / "01 One.mp3").is_file()
    book.write_text("# First\n\nA short paragraph.\n\n# Two\n\nAnother one.\n")
    assert run_job(load_job(write_job(tmp_path, spec)), progress=False).exit_code == 0
    assert not (chapters / "01 One.mp3").exists() and (chapters / "01 First.mp3").is_file()
    assert all(path.read_bytes() == b"the user's" for path in mine)


@pytest.mark.slow
def test_a_take_made_again_for_the_same_text_reaches_every_file_that_holds_it(tmp_path):
    """The cache key is what was asked; output fingerprints follow what came back. Replace one take with
    different audio under the same key: the chapter file and the M4B are made again, the other chapter not."""
    (tmp_path / "book.md").write_text("# One\n\nA first paragraph.\n\n# Two\n\nA second paragraph.\n")
    spec = {"sources": ["book.md"], "output": {"dir": "out", "formats": ["m4b", "mp3"]}}
    job = load_job(write_job(tmp_path, spec))
    assert run_job(job, progress=False).exit_code == 0
    out = tmp_path / "out"
    manifest = read_manifest(out / "manifest.json")
    assert manifest is not None and all(c.audio_hash for c in manifest.chunks)
    first, second = (out / "chapters" / "01 One.mp3"), (out / "chapters" / "02 Two.mp3")
    stamps = {p: p.stat().st_mtime_ns for p in (first, second, out / "One.m4b")}
    take = next(c for c in manifest.chunks if c.text == "A first paragraph.")
    # a new take of the same text: the tone of a different voice, twice as long
    put_take(TakeCache(job.cache), take.cache_key, Audio(b"\x00\x10\x00\xf0" * 22_050, 22_050))
    again = run_job(job, progress=False)
    assert again.exit_code == 0 and again.counts["synthesized"] == 0  # nothing requested
    after = read_manifest(out / "manifest.json")
    assert after is not None
    assert {c.id: c.audio_hash for c in after.chunks}[take.id] != take.audio_hash
    assert first.stat().st_mtime_ns != stamps[first] and (out / "One.m4b").stat().st_mtime_ns != stamps[out / "One.m4b"]
    assert second.stat().st_mtime_ns == stamps[second]
