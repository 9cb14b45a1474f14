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
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from ..job.review import ReviewFile, Status, TakeDecision, decision_for, review_path, text_hash, update_review
from ..job.spec import Job
from ..text.takes import Take
from .desk import Desk, parse_time, position_of
from .redo import redo


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
                self._json(self._decide({m.group(1): body})[0])
            elif self.path == "/api/decisions":  # one change for many takes (approve all shown); undoable
                changes = body.get("takes")
                if not isinstance(changes, dict) or not all(isinstance(v, dict) for v in changes.values()):
                    raise ValueError("takes: a mapping of take id to its change was expected")
                before = {i: (d.model_dump() if (d := desk.script.review.takes.get(i)) else None) for i in changes}
                self._json({"takes": self._decide(changes), "before": before})
            elif self.path == "/api/restore":  # undo: the decisions as they were (None: there was none)
                self._json({"takes": self._restore(body.get("takes"))})
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
                self._json({"take": desk.chapter(take.chapter)["takes"][position_of(desk.script, take)]})
            elif m := re.fullmatch(r"/api/chapter/(\d+)/instructions", self.path):
                index = int(m.group(1))
                if index >= len(desk.script.chapters):
                    return self._json({"error": "no such chapter"}, 404)
                said = str(body.get("instructions") or "").strip() or None
                self._decide({take.id: {"instructions": said} for take in desk.script.takes_by_chapter[index]})
                self._json(desk.chapter(index))
            elif self.path == "/api/lexicon":
                word, said = str(body.get("word", "")).strip(), str(body.get("replacement", "")).strip()
                if not word or not said or " " in word:
                    raise ValueError("a lexicon entry is one word and what to say instead")
                pattern = re.compile(rf"\b{re.escape(word)}\b")
                script = desk.script  # where the takes it changes are (their ids follow their text, and change)
                changes = [
                    {"chapter": t.chapter, "position": position_of(script, t)}
                    for t in script.takes
                    if pattern.search(t.text)
                ]
                update_review(desk.job.path, lambda review: review.lexicon.__setitem__(word, said))
                desk.changed()
                self._json({"word": word, "replacement": said, "takes": changes})
            else:
                self._send(404, b"not found\n", "text/plain")
        except ValueError as exc:
            self._json({"error": str(exc)}, 400)

    def _decide(self, changes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply each take's change in one write of the review file; the takes as the page shows them now."""
        desk = self.server.desk
        takes = {}
        for take_id, body in changes.items():
            take = desk.take(take_id)
            if take is None:
                raise ValueError(f"no such take: {take_id}")
            status = body.get("status")
            if status is not None and status not in Status.__args__:  # type: ignore[attr-defined]
                raise ValueError(f"status must be one of {', '.join(Status.__args__)}")  # type: ignore[attr-defined]
            if body.get("instructions") and not desk.voice()["instructions"]:
                raise ValueError("this book's voice does not take instructions")
            takes[take_id] = take

        def change(review: ReviewFile) -> None:
            for take_id, body in changes.items():
                take = takes[take_id]
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
        return self._shown(takes.values())

    def _restore(self, before: Any) -> list[dict[str, Any]]:
        """Put decisions back as ``/api/decisions`` found them: undo."""
        desk = self.server.desk
        if not isinstance(before, dict):
            raise ValueError("takes: a mapping of take id to its decision (or null) was expected")
        takes = {i: t for i in before if (t := desk.take(i)) is not None}
        try:
            restored = {i: None if d is None else TakeDecision.model_validate(d) for i, d in before.items()}
        except ValidationError as exc:
            raise ValueError(f"not a decision: {exc.errors()[0]['msg']}") from None

        def change(review: ReviewFile) -> None:
            for take_id, decision in restored.items():
                if decision is None:
                    review.takes.pop(take_id, None)
                else:
                    review.takes[take_id] = decision

        update_review(desk.job.path, change)
        desk.changed()
        return self._shown(takes.values())

    def _shown(self, takes: Iterable[Take]) -> list[dict[str, Any]]:
        """The takes as the page shows them now (each chapter's made once: a batch may hold hundreds)."""
        desk = self.server.desk
        chapters: dict[int, dict[str, Any]] = {}
        shown = []
        for take in takes:
            if take.chapter not in chapters:
                chapters[take.chapter] = desk.chapter(take.chapter)
            shown.append(chapters[take.chapter]["takes"][position_of(desk.script, take)])
        return shown

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


def _page(desk: Desk) -> str:
    """The page, with the first chapter's takes rendered here: it shows at once, before any script runs."""
    template = resources.files("narrator.review").joinpath("page.html").read_text(encoding="utf-8")
    first = desk.chapter(0)
    data = {"chapter": first, "voice": desk.voice(), "review_file": review_path(desk.job.path).name}
    rows = "".join(
        f'<li class="take" data-id="{t["id"]}"><p class="text">{html.escape(t["text"])}</p></li>'
        for t in first["takes"]
    )
    return (
        template.replace("{{title}}", html.escape(desk.script.document.title))
        .replace("{{first}}", rows)
        .replace("{{data}}", json.dumps(data).replace("</", "<\\/"))  # inert inside its <script> element
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
