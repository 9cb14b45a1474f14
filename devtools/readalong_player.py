"""A read-along book played in a browser as a reading system plays its Media Overlays: the page shown, the
sentence being read in the book's active class, page after page and clip after clip. For looking at a book
without installing a reader, for the browser test that plays one, and for the README's screenshot.

    python -m devtools.readalong_player "out/The Lighthouse Keeper.epub"     # then open http://127.0.0.1:8100/

It reads only what a reader reads: the container, the package (spine, each page's ``media-overlay``, the
``media:active-class``), the SMIL pars (text src, audio src, clipBegin, clipEnd). Served from the zip itself,
with byte ranges (a browser seeks audio by asking for them).
"""

from __future__ import annotations

import argparse
import mimetypes
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

TYPES = {".xhtml": "application/xhtml+xml", ".smil": "application/smil+xml", ".m4a": "audio/mp4",
         ".opf": "application/oebps-package+xml", ".xml": "application/xml", ".css": "text/css"}  # fmt: skip

PLAYER = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Read along</title>
<style>
  body { margin: 0; font: 15px system-ui, sans-serif; display: grid; grid-template-rows: auto 1fr; height: 100vh; }
  header { display: flex; gap: 12px; align-items: center; padding: 8px 14px; background: #223; color: #eee; }
  header h1 { font-size: 16px; margin: 0 12px 0 0; font-weight: 600; }
  #now { opacity: 0.8; }
  iframe { border: 0; width: 100%; height: 100%; background: #fff; }
</style></head>
<body>
<header><h1 id="title">Read along</h1><button id="play">Play</button><audio id="audio" preload="auto"></audio>
<span id="now"></span></header>
<iframe id="page" title="page"></iframe>
<script>
const book = "/book/";
const audio = document.getElementById("audio"), frame = document.getElementById("page");
const player = { pars: [], current: -1, activeClass: "-epub-media-overlay-active", ready: false, moves: 0 };
window.player = player;
const xml = async (path) => new DOMParser().parseFromString(await (await fetch(book + path)).text(), "application/xml");
const join = (base, href) => new URL(href, "http://x/" + base).pathname.slice(1);
const clock = (v) => {
  if (v.includes(":")) return v.split(":").map(Number).reduce((a, p) => a * 60 + p, 0);
  const m = /^([\\d.]+)(h|min|s|ms)?$/.exec(v.trim()); const scale = {h: 3600, min: 60, s: 1, ms: 0.001};
  return Number(m[1]) * (scale[m[2] || "s"]);
};
async function load() {
  const container = await xml("META-INF/container.xml");
  const opfPath = container.querySelector("rootfile").getAttribute("full-path");
  const opf = await xml(opfPath);
  const items = {};
  for (const item of opf.querySelectorAll("manifest > item"))
    items[item.getAttribute("id")] = {
      href: join(opfPath, decodeURI(item.getAttribute("href"))), overlay: item.getAttribute("media-overlay") };
  for (const meta of opf.querySelectorAll("metadata > meta"))
    if (meta.getAttribute("property") === "media:active-class") player.activeClass = meta.textContent.trim();
  const title = opf.getElementsByTagNameNS("http://purl.org/dc/elements/1.1/", "title")[0];
  document.getElementById("title").textContent = title ? title.textContent : "Read along";
  for (const ref of opf.querySelectorAll("spine > itemref")) {
    const item = items[ref.getAttribute("idref")];
    if (!item || !item.overlay) continue;
    const smilPath = items[item.overlay].href, smil = await xml(smilPath);
    for (const par of smil.getElementsByTagName("par")) {
      const text = par.getElementsByTagName("text")[0], sound = par.getElementsByTagName("audio")[0];
      const [src, id] = text.getAttribute("src").split("#");
      player.pars.push({ page: join(smilPath, src), id, audio: join(smilPath, sound.getAttribute("src")),
        begin: clock(sound.getAttribute("clipBegin")), end: clock(sound.getAttribute("clipEnd")) });
    }
  }
  player.ready = true;
}
function showPage(page) {
  return new Promise((resolve) => {
    if (frame.dataset.page === page) return resolve();
    frame.onload = () => resolve(); frame.dataset.page = page; frame.src = book + page;
  });
}
function highlight(index) {
  const doc = frame.contentDocument;
  if (!doc) return;
  for (const el of doc.querySelectorAll("." + CSS.escape(player.activeClass))) el.classList.remove(player.activeClass);
  const par = player.pars[index], el = par && doc.getElementById(par.id);
  if (el) { el.classList.add(player.activeClass); el.scrollIntoView({ block: "center" }); }
  document.getElementById("now").textContent = par ? `${par.id}  ${par.begin.toFixed(2)}-${par.end.toFixed(2)} s` : "";
}
async function go(index, at) {
  const par = player.pars[index];
  if (!par) { audio.pause(); return; }
  const move = ++player.moves;  // a later go() (a seek while this one loads) takes over from this one
  player.current = index;
  await showPage(par.page);
  if (move !== player.moves) return;
  if (audio.dataset.src !== par.audio) {
    audio.dataset.src = par.audio; audio.src = book + par.audio;
    // its metadata, or another file asked for meanwhile (whose go() takes over)
    await new Promise((resolve) => {
      audio.addEventListener("loadedmetadata", resolve, { once: true });
      audio.addEventListener("emptied", resolve, { once: true });
    });
    if (move !== player.moves) return;
  }
  const wanted = at === undefined ? par.begin : at;
  if (Math.abs(audio.currentTime - wanted) > 0.05) audio.currentTime = wanted;
  highlight(index);
}
function tick() {
  const index = player.current, par = player.pars[index];
  if (par && !audio.paused && audio.currentTime >= par.end) {
    const next = player.pars[index + 1];
    // the next clip runs on in the same file: keep playing, move the highlight; else go there
    if (next && next.audio === par.audio && Math.abs(next.begin - par.end) < 0.01 && next.page === par.page) {
      player.current = index + 1; highlight(index + 1);
    } else {
      go(index + 1);
    }
  }
  requestAnimationFrame(tick);
}
player.seek = async (index, at) => { await go(index, at); };
player.play = async () => { if (player.current < 0) await go(0); await audio.play(); };
document.getElementById("play").onclick = () => (audio.paused ? player.play() : audio.pause());
audio.onplay = () => { document.getElementById("play").textContent = "Pause"; };
audio.onpause = () => { document.getElementById("play").textContent = "Play"; };
// the clock runs from the start: a first page still loading (or a seek that replaced its audio) never stops it
load().then(() => { requestAnimationFrame(tick); return go(0); });
</script>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    book: zipfile.ZipFile

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            return self._send(PLAYER.encode("utf-8"), "text/html; charset=utf-8")
        name = unquote(self.path.removeprefix("/book/").split("?")[0])
        try:
            data = self.book.read(name)
        except KeyError:
            self.send_error(404)
            return
        suffix = Path(name).suffix.lower()
        return self._send(data, TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream")

    def _send(self, data: bytes, content_type: str) -> None:
        start, end, status = 0, len(data) - 1, 200
        if match := re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "")):
            first, last = match.groups()
            start = int(first) if first else max(0, len(data) - int(last))
            end = min(end, int(last)) if first and last else end
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        self.wfile.write(data[start : end + 1])


def serve(book: Path, port: int = 0) -> ThreadingHTTPServer:
    """The player for ``book`` on loopback (``port`` 0: any free one), serving in a thread of its own."""
    handler = type("Handler", (_Handler,), {"book": zipfile.ZipFile(book)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("book", type=Path)
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    server = serve(args.book, args.port)
    print(f"playing {args.book} at http://127.0.0.1:{server.server_port}/  (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
