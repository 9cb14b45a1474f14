"""``narrator review``: the editor's page, served on 127.0.0.1 for one job.

The page can spend money (regenerating calls the API), so: it binds to 127.0.0.1 unless told otherwise; every
request carries the access token (``?token=`` for what the browser fetches itself: the page and its audio; the
``X-Narrator-Token`` header for the page's API calls, which change state only by POST: no CSRF); the Host header
must name this server (no DNS rebinding); audio is served by take id from the cache, never by a path from the
client; the API key never reaches the page.
"""

from __future__ import annotations

import hmac
import html
import json
import re
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from .audio import wav_layout
from .records import Manifest, read_manifest
from .redo import redo
from .review import Status, TakeDecision, decision_for, review_state, stale_decisions, text_hash, update_review
from .script import Script, prepare_script
from .spec import Job
from .takes import Take

PEAKS = 96  # bars in a take's waveform


@dataclass
class Desk:
    """The job under review: its script (made again after every change to the review file) and last manifest."""

    job: Job
    token: str
    _script: Script | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.waveforms: dict[str, list[float]] = {}

    @property
    def script(self) -> Script:
        with self.lock:
            if self._script is None:
                self._script = prepare_script(self.job)
            return self._script

    def changed(self) -> None:
        with self.lock:
            self._script = None

    def manifest(self) -> Manifest | None:
        return read_manifest(self.job.output.dir / "manifest.json")

    def take(self, take_id: str) -> Take | None:
        return next((t for t in self.script.takes if t.id == take_id), None)

    def chapter(self, index: int) -> dict[str, Any]:
        script = self.script
        manifest = self.manifest()
        placed = {c.id: c for c in manifest.chunks} if manifest else {}
        starts = {c.number - 1: c.start for c in manifest.chapters} if manifest else {}
        takes = []
        stale = stale_decisions(script.review, script.takes)
        for take in script.takes_by_chapter[index]:
            current = script.decision(take)
            inherited = stale.get(take.id)
            first = placed.get(take.chunks[0].id)
            variants = [n for n, key in enumerate(script.variant_keys(take)) if script.cache.has(key)]
            flags = sorted({f for c in take.chunks if c.id in placed for f in placed[c.id].flags or []})
            takes.append({
                "id": take.id, "text": script.text_of(take), "source": take.text,
                "chunks": [c.id for c in take.chunks],
                "status": current.status if current else "unheard", "note": current.note if current else None,
                "overridden": bool(current and current.text), "instructions": current.instructions if current else None,
                "stale": inherited is not None,
                "was": {"status": inherited.status, "note": inherited.note} if inherited else None,
                "variants": variants, "chosen": _chosen(current, variants),
                "start": None if first is None or first.offset is None else (starts.get(index) or 0.0) + first.offset,
                "flags": flags, "waveform": self.waveform(script.key_of(take)),
            })  # fmt: skip
        return {"index": index, "title": script.chapters[index].title, "takes": takes}

    def waveform(self, key: str) -> list[float]:
        """Peaks of the take, computed once: editors find clipped starts and runaway takes by eye."""
        if key not in self.waveforms:
            path = self.script.cache.local(key)
            try:
                layout = wav_layout(path)
                with path.open("rb") as f:
                    f.seek(layout.offset)
                    samples = np.frombuffer(f.read(layout.samples * 2), dtype="<i2")
            except (OSError, ValueError):
                return []
            bars = np.array_split(np.abs(samples.astype(np.int32)), PEAKS) if samples.size >= PEAKS else []
            self.waveforms[key] = [round(float(b.max()) / 32768, 3) for b in bars]
        return self.waveforms[key]

    def book(self) -> dict[str, Any]:
        script = self.script
        chapters = []
        stale = stale_decisions(script.review, script.takes)
        for index, chapter in enumerate(script.chapters):
            counts = {"approved": 0, "rejected": 0, "unheard": 0, "stale": 0}
            for take in script.takes_by_chapter[index]:
                state, _ = review_state(script.review, take, stale)
                counts[state if state in counts else "unheard"] += 1
            chapters.append({"index": index, "title": chapter.title, **counts})
        return {"title": script.document.title, "chapters": chapters, "lexicon": script.review.lexicon}

    def at(self, seconds: float) -> dict[str, Any] | None:
        """The take playing at ``seconds`` into the book (the M4B's timeline), and how far into it."""
        manifest = self.manifest()
        if manifest is None:
            return None
        starts = {c.number: c.start or 0.0 for c in manifest.chapters}
        for chunk in manifest.chunks:
            if chunk.offset is None or chunk.take is None:
                continue
            begin = starts.get(chunk.chapter, 0.0) + chunk.offset
            if begin <= seconds < begin + (chunk.duration or 0.0) + 2.0:  # a pause belongs to the take before it
                return {"chapter": chunk.chapter - 1, "take": chunk.take, "into": round(seconds - begin, 3)}
        return None


def _chosen(decision: TakeDecision | None, variants: list[int]) -> int | None:
    if not variants:
        return None
    if decision is not None and decision.chosen is not None and decision.chosen in variants:
        return decision.chosen
    return variants[-1]


def parse_time(text: str) -> float:
    """``2:13:05``, ``13:05`` or ``785`` (seconds; decimals allowed) into seconds."""
    if not re.fullmatch(r"\d+(:\d{1,2}){0,2}(\.\d+)?", text.strip()):
        raise ValueError(f"not a time: {text!r}")
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # no URLs (they hold the token) in any log
        pass

    def _allowed(self, token: str | None) -> bool:
        host, port = self.server.server_address[:2]
        names = {f"{host!s}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"}
        if self.headers.get("host") not in names:
            self._send(421, b"this server answers only to its own address\n", "text/plain")
            return False
        if token is None or not hmac.compare_digest(token, self.server.desk.token):
            self._send(
                403, b"the access token is missing or wrong: use the URL narrator review printed\n", "text/plain"
            )
            return False
        return True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._allowed(query.get("token", [""])[0] or self.headers.get("x-narrator-token")):
            return
        desk = self.server.desk
        try:
            if url.path == "/":
                self._send(200, _page(desk).encode("utf-8"), "text/html; charset=utf-8")
            elif url.path == "/api/book":
                self._json(desk.book())
            elif m := re.fullmatch(r"/api/chapter/(\d+)", url.path):
                index = int(m.group(1))
                if index >= len(desk.script.chapters):
                    return self._send(404, b"no such chapter\n", "text/plain")
                self._json(desk.chapter(index))
            elif url.path == "/api/at":
                found = desk.at(parse_time((query.get("t") or [""])[0]))
                self._json(
                    found or {"error": "no take plays at that time (build the book first?)"}, 200 if found else 404
                )
            elif m := re.fullmatch(r"/audio/(t[0-9a-f]{12})/(\d+)", url.path):
                self._audio(m.group(1), int(m.group(2)))
            else:
                self._send(404, b"not found\n", "text/plain")
        except ValueError as exc:
            self._json({"error": str(exc)}, 400)

    def do_POST(self) -> None:
        if not self._allowed(self.headers.get("x-narrator-token")):
            return
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("a JSON object was expected")
            desk = self.server.desk
            if m := re.fullmatch(r"/api/take/(t[0-9a-f]{12})", self.path):
                self._json(self._decide(m.group(1), body))
            elif m := re.fullmatch(r"/api/take/(t[0-9a-f]{12})/regenerate", self.path):
                take = desk.take(m.group(1))
                if take is None:
                    return self._json({"error": "no such take"}, 404)
                wanted = take.id
                result = redo(desk.job, lambda script: [t for t in script.takes if t.id == wanted])
                desk.changed()
                failed = [r.error for r in result.outcome.results.values() if r.status == "failed"]
                if failed or result.outcome.fatal is not None:
                    return self._json({"error": failed[0] if failed else str(result.outcome.fatal)}, 502)
                self._json({"take": desk.chapter(take.chapter)["takes"][_position(desk.script, take)]})
            elif m := re.fullmatch(r"/api/chapter/(\d+)/instructions", self.path):
                index = int(m.group(1))
                if index >= len(desk.script.chapters):
                    return self._json({"error": "no such chapter"}, 404)
                said = str(body.get("instructions") or "").strip() or None
                for take in desk.script.takes_by_chapter[index]:
                    self._decide(take.id, {"instructions": said})
                self._json(desk.chapter(index))
            elif self.path == "/api/lexicon":
                word, said = str(body.get("word", "")).strip(), str(body.get("replacement", "")).strip()
                if not word or not said or " " in word:
                    raise ValueError("a lexicon entry is one word and what to say instead")
                pattern = re.compile(rf"\b{re.escape(word)}\b")
                script = desk.script  # where the takes it changes are (their ids follow their text, and change)
                changes = [{"chapter": t.chapter, "position": _position(script, t)}
                           for t in script.takes if pattern.search(t.text)]  # fmt: skip
                update_review(desk.job.path, lambda review: review.lexicon.__setitem__(word, said))
                desk.changed()
                self._json({"word": word, "replacement": said, "takes": changes})
            else:
                self._send(404, b"not found\n", "text/plain")
        except ValueError as exc:
            self._json({"error": str(exc)}, 400)

    def _decide(self, take_id: str, body: dict[str, Any]) -> dict[str, Any]:
        desk = self.server.desk
        take = desk.take(take_id)
        if take is None:
            raise ValueError("no such take")
        status = body.get("status")
        if status is not None and status not in Status.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"status must be one of {', '.join(Status.__args__)}")  # type: ignore[attr-defined]

        def change(review: Any) -> None:
            found = review.takes.get(take.id)
            if found is None or found.source != text_hash(take.text):
                found = review.takes[take.id] = decision_for(take)
            for key in ("status", "note", "text", "instructions"):
                if key in body:
                    setattr(found, key, (str(body[key]).strip() or None) if body[key] is not None else None)
            if "chosen" in body:
                found.chosen = int(body["chosen"])

        update_review(desk.job.path, change)
        desk.changed()
        return desk.chapter(take.chapter)["takes"][_position(desk.script, take)]

    def _audio(self, take_id: str, variant: int) -> None:
        script = self.server.desk.script
        take = self.server.desk.take(take_id)
        keys = script.variant_keys(take) if take else []
        if take is None or variant >= len(keys) or not script.cache.has(keys[variant]):
            return self._send(404, b"no such take\n", "text/plain")
        data = script.cache.local(keys[variant]).read_bytes()
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("range") or "")
        if ranged and (ranged.group(1) or ranged.group(2)):
            if ranged.group(1):
                start = int(ranged.group(1))
                end = min(int(ranged.group(2)) if ranged.group(2) else len(data) - 1, len(data) - 1)
            else:
                start, end = max(0, len(data) - int(ranged.group(2))), len(data) - 1
            if start > end:
                return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
            headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"}
            return self._send(206, data[start : end + 1], "audio/wav", headers)
        self._send(200, data, "audio/wav", {"Accept-Ranges": "bytes"})

    def _json(self, value: Any, status: int = 200) -> None:
        self._send(status, json.dumps(value).encode("utf-8"), "application/json")

    def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the token is in the page's URL
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _position(script: Script, take: Take) -> int:
    return [t.id for t in script.takes_by_chapter[take.chapter]].index(take.id)


def _page(desk: Desk) -> str:
    """The page, with the first chapter's takes rendered here: it shows at once, before any script runs."""
    template = resources.files("narrator").joinpath("review.html").read_text(encoding="utf-8")
    first = desk.chapter(0)
    rows = "".join(
        f'<li class="take" data-id="{t["id"]}"><p class="text">{html.escape(t["text"])}</p></li>'
        for t in first["takes"]
    )
    return (
        template.replace("{{title}}", html.escape(desk.script.document.title))
        .replace("{{first}}", rows)
        .replace("{{data}}", json.dumps(first).replace("</", "<\\/"))  # inert inside its <script> element
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    desk: Desk


def serve(job: Job, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> _Server:
    """A server for the job's page, not yet serving: ``server.serve_forever()``; its URL is ``url(server)``."""
    server = _Server((host, port), _Handler)
    server.desk = Desk(job, token or secrets.token_urlsafe(24))
    server.desk.script  # noqa: B018  (the book is read now: a broken job fails before a URL is printed)
    return server


def url(server: _Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/?token={server.desk.token}"
