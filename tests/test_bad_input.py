"""Bad input, as users and hostile files bring it: every case runs the real CLI in a process and must end with a
documented exit code and one `error:` line naming the culprit, no traceback, nothing created or changed outside
the output and cache folders, and nothing that was there before changed."""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from devtools.epub import NavPoint, Page, build_epub
from tests.books import paragraph
from tests.hostile import closed_port, hostile_server

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

GOOD_MD = "# One\n\nA first short paragraph.\n"
KEY = {"OPENAI_API_KEY": "sk-test-key-0123456789"}


@dataclass
class Case:
    name: str
    files: dict[str, str | bytes | Callable[[Path], object]]  # relative path -> content, or a maker
    job: dict | str  # the job file (a dict is dumped as YAML)
    exit_code: int
    says: str  # in the one error line
    command: str = "validate"
    env: dict[str, str] = field(default_factory=dict)


def job(sources: object = ("book.md",), **extra: object) -> dict:
    return {"sources": list(sources) if isinstance(sources, tuple) else sources, "output": {"dir": "out"}, **extra}


def good_epub(path: Path, pages: list[Page] | None = None, toc: list[NavPoint] | None = None) -> Path:
    pages = pages or [Page("c1.xhtml", f"<h1>One</h1><p>{paragraph(1)}</p>", "One")]
    return build_epub(path, title="T", author="A", pages=pages, toc=toc or [NavPoint("One", "c1.xhtml")])


def patched_epub(**patch: object) -> Callable[[Path], object]:
    """An EPUB whose c1.xhtml member is damaged in its zip headers or its data (see _patch)."""

    def make(path: Path) -> None:
        good_epub(path)
        _patch(path, "OEBPS/c1.xhtml", **patch)  # type: ignore[arg-type]

    return make


def _patch(path: Path, member: str, flags: int = 0, method: int | None = None, size: int | None = None,
           flip_data: bool = False) -> None:  # fmt: skip
    """Rewrite one member's local and central headers (flag bits, compression method, declared size), or
    flip bytes in the middle of its data."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04")  # the first local header; walk to ours
    while local != -1:
        nlen, xlen = struct.unpack_from("<HH", data, local + 26)
        if data[local + 30 : local + 30 + nlen] == name:
            break
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1 and data[central + 46 : central + 46 + len(name)] != name:
        central = data.find(b"PK\x01\x02", central + 4)
    for header, at in ((local, 6), (central, 8)):
        struct.pack_into("<H", data, header + at, struct.unpack_from("<H", data, header + at)[0] | flags)
        if method is not None:
            struct.pack_into("<H", data, header + at + 2, method)
        if size is not None:
            struct.pack_into("<I", data, header + at + 16, size)
    if flip_data:
        start = local + 30 + nlen + xlen
        csize = struct.unpack_from("<I", data, local + 18)[0]
        for i in range(start + csize // 3, start + csize // 3 + 8):
            data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def zip_bomb(path: Path) -> None:
    """The chapter's headers say 1 KB; its data inflates to 50 MB."""
    good_epub(path)
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    members["OEBPS/c1.xhtml"] = b"<p>" + b"a" * (50 * 1024 * 1024) + b"</p>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in members.items():
            z.writestr(name, content)
    _patch(path, "OEBPS/c1.xhtml", size=1024)


def nested_nav(path: Path) -> None:
    deep = NavPoint("One", "c1.xhtml")
    for _ in range(3000):
        deep = NavPoint("Part", "c1.xhtml", (deep,))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # the builder recurses once a level; narrator, reading it, must not fail so
    try:
        good_epub(path, toc=[deep])
    finally:
        sys.setrecursionlimit(limit)


def xxe_epub(path: Path) -> None:
    good_epub(path)
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    opf = members["OEBPS/content.opf"].decode()
    opf = opf.replace("<package", '<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<package', 1)
    members["OEBPS/content.opf"] = opf.replace("<dc:title>T", "<dc:title>&x;T").encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)


def drop_member(member: str) -> Callable[[Path], object]:
    def make(path: Path) -> None:
        good_epub(path)
        with zipfile.ZipFile(path) as z:
            members = {i.filename: z.read(i) for i in z.infolist() if i.filename != member}
        with zipfile.ZipFile(path, "w") as z:
            for name, content in members.items():
                z.writestr(name, content)

    return make


MD = {"book.md": GOOD_MD}
YAML_CASES = [
    Case("yaml syntax", MD, "sources: [book.md\noutput: {dir: out}\n", 2, "job.yaml:2: invalid YAML"),
    Case(
        "duplicate key",
        MD,
        "sources: [book.md]\noutput: {dir: out}\nsources: [other.md]\n",
        2,
        "job.yaml:3: invalid YAML: key 'sources' is given twice",
    ),
    Case(
        "alias bomb",
        MD,
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(9)
        ),
        2,
        "values once aliases are expanded",
    ),
    Case("deep brackets", MD, "sources: " + "[" * 1000 + "]" * 1000 + "\n", 2, "invalid YAML"),
    Case("a list, not a mapping", MD, "- book.md\n", 2, "a job must be a YAML mapping, got a list"),
    Case("empty job file", MD, "", 2, "a job must be a YAML mapping, got nothing"),
    Case("binary job file", {**MD, "job.yaml": bytes(range(256)) * 4}, "", 2, "job.yaml"),
    Case("tab indentation", MD, "sources:\n\t- book.md\n", 2, "invalid YAML"),
    Case("unknown top-level key", MD, job(colour="blue"), 2, "colour: unknown key; allowed: sources"),
    Case("concurrency as text", MD, job(concurrency="lots"), 2, "concurrency: must be an integer, got text"),
    Case("speed out of range", MD, job(voice={"speed": 9}), 2, "voice.speed: must be between 0.25 and 4, got 9"),
    Case("output not a mapping", MD, {"sources": ["book.md"], "output": "out"}, 2, "output: must be a mapping"),
    Case(
        "sources empty", MD, job([]), 2, "sources: must be a non-empty list of paths or {path, title, format} mappings"
    ),
    Case("sources a string", MD, job("book.md"), 2, "sources: must be a non-empty list"),
    Case(
        "unknown format",
        MD,
        {"sources": ["book.md"], "output": {"dir": "out", "formats": ["wav"]}},
        2,
        "output.formats[0]: 'wav' is not one of: m4b",
    ),
    Case(
        "bad bitrate",
        MD,
        {"sources": ["book.md"], "output": {"dir": "out", "bitrate": "fast"}},
        2,
        "output.bitrate: must look like 64k, got 'fast'",
    ),
    Case(
        "unknown mastering",
        MD,
        {"sources": ["book.md"], "output": {"dir": "out", "mastering": "loud"}},
        2,
        "output.mastering: 'loud' is not one of: none, acx",
    ),
    Case("negative budget", MD, job(budget_usd=-1), 2, "budget_usd: must be between 0 and"),
    Case("lexicon a list", MD, job(lexicon=["a", "b"]), 2, "lexicon: must be a mapping of word: replacement"),
    Case("lexicon empty word", MD, job(lexicon={" ": "x"}), 2, "a lexicon word must be non-empty text"),
    Case("price as text", MD, job(prices={"tts-1": "cheap"}), 2, "prices.tts-1"),
    Case("unknown provider", MD, job(voice={"provider": "elevenlabs"}), 2, "'elevenlabs' is not one of: local"),
    Case("unknown local voice", MD, job(voice={"voice": "nobody"}), 2, "unknown local voice 'nobody'"),
    Case(
        "bogus voice model",
        {**MD, "v.onnx": "not a model", "v.onnx.json": "{}"},
        job(voice={"voice": "v.onnx"}),
        2,
        "voice.voice: cannot load the piper voice",
        command="run",
    ),
    Case("openai key on a local voice", MD, job(voice={"api_key_env": "X"}), 2, "voice.api_key_env: unknown key"),
]

PATH_CASES = [
    Case("source missing", {}, job(["absent.epub"]), 2, "sources[0]: file not found"),
    Case("source is a folder", {"book.md/keep": "x"}, job(["book.md"]), 2, "sources[0]: not a readable file"),
    Case("NUL in a path", MD, 'sources: ["bo\\0ok.md"]\noutput: {dir: out}\n', 2, "sources[0]: not a usable path"),
    Case(
        "lone surrogate in a path",
        MD,
        'sources: ["bo\\ud800ok.md"]\noutput: {dir: out}\n',
        2,
        "sources[0]: not a usable path",
    ),
    Case("name too long", MD, job(["x" * 5000 + ".md"]), 2, "sources[0]: not a usable path"),
    Case("unknown extension", {"book.doc": "x"}, job(["book.doc"]), 2, "cannot tell the format of book.doc"),
    Case("cache under a file", MD, job(cache="book.md/cache"), 2, "cache: not a folder:"),
    Case(
        "output dir is a file",
        {**MD, "out": "x"},
        {"sources": ["book.md"], "output": {"dir": "out"}},
        2,
        "output.dir: not a folder:",
    ),
    Case(
        "output dir is the root",
        MD,
        {"sources": ["book.md"], "output": {"dir": "/"}},
        2,
        "output.dir: / is the root folder",
    ),
    Case("output dir is home", MD, {"sources": ["book.md"], "output": {"dir": "~"}}, 2, "is your home folder"),
    Case(
        "output dir is the job's folder",
        MD,
        {"sources": ["book.md"], "output": {"dir": "."}},
        2,
        "is the job's own folder",
    ),
    Case(
        "output dir is a source's folder",
        {"books/book.md": GOOD_MD},
        {"sources": ["books/book.md"], "output": {"dir": "books"}},
        2,
        "is the folder of source book.md",
    ),
    Case(
        "cover not an image",
        {**MD, "cover.png": "not a picture"},
        job(cover="cover.png"),
        2,
        "cover must be a JPEG or PNG",
        command="run",
    ),
    Case(
        "manifest.json is a folder",
        {**MD, "out/manifest.json/x": "y"},
        job(),
        2,
        "manifest.json is not a file",
        command="run",
    ),
    Case("job file missing", {}, "", 2, "job file not found", command="validate absent.yaml"),
]

EPUB_CASES = [
    Case(
        "not a zip",
        {"b.epub": b"PK but not really a zip file at all"},
        job(["b.epub"]),
        2,
        "not an EPUB",
        command="run",
    ),
    Case(
        "truncated zip",
        {"b.epub": lambda p: p.write_bytes(good_epub(p).read_bytes()[:300])},
        job(["b.epub"]),
        2,
        "b.epub",
        command="run",
    ),
    Case("bad CRC", {"b.epub": patched_epub(flip_data=True)}, job(["b.epub"]), 2, "c1.xhtml", command="run"),
    Case(
        "encrypted member", {"b.epub": patched_epub(flags=0x1)}, job(["b.epub"]), 2, "DRM or a password", command="run"
    ),
    Case("unknown compression", {"b.epub": patched_epub(method=99)}, job(["b.epub"]), 2, "c1.xhtml", command="run"),
    Case("header lies about size", {"b.epub": zip_bomb}, job(["b.epub"]), 2, "c1.xhtml", command="run"),
    Case(
        "no container.xml",
        {"b.epub": drop_member("META-INF/container.xml")},
        job(["b.epub"]),
        2,
        "container.xml",
        command="run",
    ),
    Case(
        "no package document",
        {"b.epub": drop_member("OEBPS/content.opf")},
        job(["b.epub"]),
        2,
        "content.opf",
        command="run",
    ),
    Case("external entity", {"b.epub": xxe_epub}, job(["b.epub"]), 2, "refused unsafe XML", command="run"),
    Case("nav nested 3000 deep", {"b.epub": nested_nav}, job(["b.epub"]), 2, "b.epub", command="run"),
]

TEXT_CASES = [
    Case(
        "binary named .txt",
        {"book.txt": lambda p: p.write_bytes(os.urandom(65536))},
        job(["book.txt"]),
        2,
        "book.txt: does not look like text",
        command="run",
    ),
    Case(
        "bad UTF-16 after its mark",
        {"book.txt": b"\xff\xfeH\x00i\x00\x00\xd8"},
        job(["book.txt"]),
        2,
        "not valid UTF-16-LE text",
        command="run",
    ),
]

SERVER_JOB = {"sources": ["book.md"], "output": {"dir": "out", "formats": ["m4b"]}, "retry": {"attempts": 2,
              "max_seconds": 20}}  # fmt: skip


def openai_job(base_url: str, **voice: object) -> dict:
    return {**SERVER_JOB, "voice": {"provider": "openai", "base_url": base_url, **voice}}


SERVER_CASES = [
    Case("base_url ftp", MD, openai_job("ftp://x"), 2, "voice.base_url: must be an http:// or https:// URL", env=KEY),
    Case("base_url without host", MD, openai_job("http://"), 2, "voice.base_url: must be an http", env=KEY),
    Case("base_url not a url", MD, openai_job("not a url"), 2, "voice.base_url: must be an http", env=KEY),
    Case(
        "no API key",
        MD,
        openai_job("http://127.0.0.1:9/v1"),
        2,
        "voice.api_key_env: the environment variable OPENAI_API_KEY is not set",
        command="run",
    ),
    Case(
        "instructions on tts-1",
        MD,
        openai_job("http://127.0.0.1:9/v1", model="tts-1", instructions="Calm."),
        2,
        "tts-1 does not take instructions",
        env=KEY,
    ),
]
# servers started per test: (name, mode, exit code, what the last line says)
LIVE_SERVERS = [
    ("captive portal", "html", 3, "not audio: Content-Type text/html"),
    ("portal without a type", "html_untyped", 3, "not audio: Content-Type application/octet-stream"),
    ("JSON with a 200", "json200", 3, "not audio: Content-Type application/json"),
    ("redirect", "redirect", 3, "redirect to https://login.example.invalid/portal"),
    ("huge body", "huge", 1, "audio too long for its text"),
    ("trickle", "trickle", 1, "timed out"),
]


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}  # fmt: skip


def check(tmp_path: Path, cli, case: Case, env: dict[str, str] | None = None) -> None:
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    job_file = tmp_path / "job.yaml"
    if "job.yaml" not in case.files:
        job_file.write_text(case.job if isinstance(case.job, str) else yaml.safe_dump(case.job, sort_keys=False))
    before = snapshot(tmp_path)
    command, *rest = case.command.split()
    arguments = [str(tmp_path / r) for r in rest] or [str(job_file)]
    result = cli(command, *arguments, cwd=tmp_path, env={**case.env, **(env or {})}, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == case.exit_code, (result.returncode, result.stderr)
    assert len(lines) == 1 and case.says in lines[0], result.stderr
    after = snapshot(tmp_path)
    ours = ("out/", ".narrator-cache/", "out" + os.sep)
    assert {k: v for k, v in after.items() if not k.startswith(ours)} == {
        k: v for k, v in before.items() if not k.startswith(ours)
    }, "something outside the output and cache folders was created or changed"
    assert all(after.get(k) == v for k, v in before.items()), "a file that was there before changed"


@pytest.mark.parametrize("case", YAML_CASES + PATH_CASES + EPUB_CASES + TEXT_CASES + SERVER_CASES,
                         ids=lambda c: c.name)  # fmt: skip
def test_bad_input_is_one_clean_error(tmp_path, cli, case):
    check(tmp_path, cli, case)


@pytest.mark.parametrize(("name", "mode", "exit_code", "says"), LIVE_SERVERS, ids=[s[0] for s in LIVE_SERVERS])
def test_a_misbehaving_server_is_one_clean_error(tmp_path, cli, name, mode, exit_code, says):
    with hostile_server(mode) as server:
        case = Case(name, MD, openai_job(server.url, timeout=4), exit_code, says, command="run", env=KEY)
        check(tmp_path, cli, case)
        assert server.requests <= 4  # fail fast: not eight attempts per chunk against a portal


def test_nothing_listening_ends_the_run_at_once_naming_the_url(tmp_path, cli):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    case = Case("refused", MD, openai_job(url), 3, f"voice.base_url {url}: connection refused", command="run",
                env=KEY)  # fmt: skip
    check(tmp_path, cli, case)


def test_an_ffmpeg_failure_has_its_own_exit_code_and_names_the_file(tmp_path, cli):
    """ffmpeg crashing while it encodes a chapter MP3 (a real process that fails, standing in for a broken
    install or a full encoder): exit 6, one line naming the file and ffmpeg's reason, the takes kept."""
    from devtools.fake_openai import FakeSpeechServer
    from narrator.core import ffmpeg

    broken = tmp_path / "ffmpeg"
    broken.write_text(
        "#!/bin/sh\n"
        'case "$*" in *libmp3lame*) echo "Error: encoder crashed (simulated)" >&2; exit 1;; esac\n'
        f'exec "{ffmpeg.executable()}" "$@"\n',
        encoding="utf-8",
    )
    broken.chmod(0o755)
    (tmp_path / "book.md").write_text(f"# One\n\n{paragraph(1)}\n\n# Two\n\n{paragraph(2)}\n", encoding="utf-8")
    key = "sk-test-0123456789abcdefghijklmnop"
    with FakeSpeechServer(key) as server:
        spec = {"sources": ["book.md"], "title": "Broken", "voice": {"provider": "openai", "base_url": server.url},
                "output": {"dir": "out", "formats": ["mp3"]}, "cache": "cache"}  # fmt: skip
        (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        env = {"OPENAI_API_KEY": key, "IMAGEIO_FFMPEG_EXE": str(broken)}
        result = cli("run", str(tmp_path / "job.yaml"), env=env)
    assert result.returncode == 6, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert ".mp3" in last and "encoder crashed (simulated)" in last, last
    assert any((tmp_path / "cache").rglob("*.wav")) or any((tmp_path / "cache").rglob("*.flac"))


def test_a_source_that_is_a_symlink_loop_is_one_line(tmp_path, cli):
    (tmp_path / "loop.md").symlink_to(tmp_path / "loop.md")
    (tmp_path / "job.yaml").write_text("sources: [loop.md]\nvoice: {provider: local}\n", encoding="utf-8")
    result = cli("validate", str(tmp_path / "job.yaml"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "job.yaml:1: sources[0]: not a usable path: 'loop.md'" in line and "loop" in line.lower()


def test_html_nested_fifty_thousand_deep_is_read(tmp_path, cli):
    """A page nested 50 000 elements deep (a broken converter's output) is read, its text found; it used to
    take minutes, each tag scanning every open one. The timeout only keeps a hang from stalling the suite."""
    depth = 50_000
    page = "<html><body><h1>Deep</h1>" + "<div>" * depth + "<p>The lamp burned low.</p>" + "</div>" * depth
    (tmp_path / "deep.html").write_text(page + "</body></html>", encoding="utf-8")
    (tmp_path / "job.yaml").write_text("sources: [deep.html]\nvoice: {provider: local}\n", encoding="utf-8")
    result = cli("plan", "--json", str(tmp_path / "job.yaml"), timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"characters"' in result.stdout and "Deep" in result.stdout
