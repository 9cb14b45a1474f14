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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..job.review import review_path
from ..job.spec import Job
from ..synthesis.proofs import retake_key
from .decisions import add_word, decide, decide_many, instruct_chapter, regenerate, restore
from .desk import Desk, parse_time
from .payloads import to_json
from .speakers import set_speaker, set_voice, speakers_of, voice_sample


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
            elif url.path == "/api/search":
                self._json(desk.search((query.get("q") or [""])[0]))
            elif url.path == "/api/at":
                found = desk.at(parse_time((query.get("t") or [""])[0]))
                self._json(
                    found or {"error": "no take plays at that time (build the book first?)"}, 200 if found else 404
                )
            elif m := re.fullmatch(r"/audio/(t[0-9a-f]{12})/(retake/)?(\d+)", url.path):
                self._audio(m.group(1), int(m.group(3)), retake=bool(m.group(2)))
            elif m := re.fullmatch(r"/sample/([0-9a-f]{64})", url.path):  # a voice heard before it is chosen
                self._take_audio(m.group(1))
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
                self._json(decide(desk, {m.group(1): body})[0])
            elif self.path == "/api/decisions":  # one change for many takes (approve all shown); undoable
                self._json(decide_many(desk, body.get("takes")))
            elif self.path == "/api/restore":  # undo: the decisions as they were (None: there was none)
                self._json({"takes": restore(desk, body.get("takes"))})
            elif m := re.fullmatch(r"/api/take/(t[0-9a-f]{12})/regenerate", self.path):
                self._json(*regenerate(desk, m.group(1)))
            elif m := re.fullmatch(r"/api/chapter/(\d+)/instructions", self.path):
                self._json(*instruct_chapter(desk, int(m.group(1)), body))
            elif self.path == "/api/lexicon":
                self._json(add_word(desk, body))
            elif m := re.fullmatch(r"/api/quotation/(q[0-9a-f]{10})", self.path):  # the cast: who says it
                self._json(set_speaker(desk.script, m.group(1), body))
                desk.changed()
            elif self.path == "/api/character":  # the cast: a character's voice and direction
                self._json(set_voice(desk.script, body))
                desk.changed()
            elif self.path == "/api/sample":  # the cast: a voice said aloud before it is chosen
                self._json(*voice_sample(desk.script, body))
            else:
                self._send(404, b"not found\n", "text/plain")
        except ValueError as exc:
            self._json({"error": str(exc)}, 400)

    def _audio(self, take_id: str, variant: int, retake: bool = False) -> None:
        """Take ``variant`` of a request (an editor's), or its proof-listening ``retake`` (from 1)."""
        script = self.server.desk.script
        take = self.server.desk.take(take_id)
        keys = script.variant_keys(take) if take else []
        if take is not None and retake:
            keys = [""] + [retake_key(script.key_of(take), n) for n in range(1, variant + 1)]
        if take is None or variant >= len(keys) or not keys[variant]:
            return self._send(404, b"no such take\n", "text/plain")
        self._take_audio(keys[variant])

    def _take_audio(self, key: str) -> None:
        """A take of the cache, by its key: whole, or the byte range a browser asks for to seek."""
        script = self.server.desk.script
        if not script.cache.has(key):
            return self._send(404, b"no such take\n", "text/plain")
        data = script.cache.local(key).read_bytes()
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
        self._send(status, to_json(value).encode("utf-8"), "application/json")

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


def _page(desk: Desk) -> str:
    """The page, with its first chapter's takes rendered here: it shows at once, before any script runs. It opens
    at the first chapter with a take that failed proof-listening, if any."""
    template = resources.files("narrator.review").joinpath("page.html").read_text(encoding="utf-8")
    first = desk.chapter(desk.opening_chapter())
    speakers = speakers_of(desk.script) if desk.job.cast is not None else None
    data = {
        "chapter": first,
        "voice": desk.voice(),
        "review_file": review_path(desk.job.path).name,
        "speakers": speakers,
    }
    rows = "".join(
        f'<li class="take" data-id="{t.id}"><p class="text">{html.escape(t.text)}</p></li>' for t in first.takes
    )
    return (
        template.replace("{{title}}", html.escape(desk.script.document.title))
        .replace("{{first}}", rows)
        .replace("{{data}}", to_json(data).replace("</", "<\\/"))  # inert inside its <script> element
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], desk: Desk) -> None:
        super().__init__(address, _Handler)
        self.desk = desk


def serve(job: Job, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> _Server:
    """A server for the job's page, not yet serving: ``server.serve_forever()``; its URL is ``url(server)``."""
    server = _Server((host, port), Desk(job, token or secrets.token_urlsafe(24)))
    server.desk.script  # noqa: B018  (the book is read now: a broken job fails before a URL is printed)
    return server


def url(server: _Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/?token={server.desk.token}"
