"""The ranking page (ICPL): every trained candidate's rollout video side by side, served on
127.0.0.1; the human gives each a rank (or just picks the best and the worst), may comment on
each, and submits. `WebRanker.rank` blocks until the page is submitted."""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eureka.feedback.judges import FeedbackError, Offer, TerminalHuman
from eureka.types import Ranking

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>eureka: rank iteration {iteration}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 1.5rem; background: #fafafa; }}
 .grid {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
 .card {{ background: white; border: 1px solid #ddd; border-radius: 8px; padding: .8rem; width: 340px; }}
 .card.previous {{ border-color: #6a6; }}
 video {{ width: 100%; background: #000; border-radius: 4px; }}
 .novideo {{ height: 190px; display: flex; align-items: center; justify-content: center; color: #888; }}
 textarea {{ width: 100%; box-sizing: border-box; }}
 #error {{ color: #b00; min-height: 1.2em; }}
 button {{ font-size: 1rem; padding: .5rem 1.2rem; }}
</style></head>
<body>
<h1>Rank the behaviours: iteration {iteration}</h1>
<p>Watch each policy. Give every video a rank (1 = best), or only pick the best (1) and the
worst ({count}). Comments are optional and go to the model with your ranking.</p>
<form id="ranking">
<div class="grid">{cards}</div>
<p id="error"></p>
<button type="submit" id="submit">Submit ranking</button>
</form>
<p id="done" hidden>Thank you: the ranking was recorded. You can close this page.</p>
<script>
const names = {names};
document.getElementById("ranking").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const ranks = {{}}, comments = {{}};
  names.forEach((name, i) => {{
    const r = document.getElementById("rank-" + i).value;
    if (r) ranks[name] = parseInt(r, 10);
    const c = document.getElementById("comment-" + i).value.trim();
    if (c) comments[name] = c;
  }});
  const response = await fetch("/rank", {{method: "POST", headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{ranks, comments}})}});
  const answer = await response.json();
  if (!response.ok) {{ document.getElementById("error").textContent = answer.error; return; }}
  document.getElementById("ranking").hidden = true;
  document.getElementById("done").hidden = false;
}});
</script>
</body></html>
"""

CARD = """<div class="card{previous}" data-name="{name}">
 <h3>{label}{tag}</h3>
 {media}
 <label>rank <select id="rank-{i}" name="rank-{i}"><option value="">-</option>{options}</select></label>
 <textarea id="comment-{i}" rows="2" placeholder="comment (optional)"></textarea>
</div>"""


def render_page(offers: list[Offer], iteration: int) -> str:
    """The page for a list of offers (videos at /video/<i>)."""
    cards = []
    for i, offer in enumerate(offers):
        media = (
            f'<video src="/video/{i}" controls autoplay loop muted playsinline></video>'
            if offer.video is not None
            else '<div class="novideo">no video for this candidate</div>'
        )
        options = "".join(f'<option value="{r}">{r}</option>' for r in range(1, len(offers) + 1))
        cards.append(
            CARD.format(
                previous=" previous" if offer.previous_best else "",
                name=html.escape(offer.name),
                label=f"Video {i + 1}",
                tag=" (best so far)" if offer.previous_best else "",
                media=media,
                i=i,
                options=options,
            )
        )
    names = json.dumps([o.name for o in offers]).replace("</", "<\\/")
    return PAGE.format(iteration=iteration, count=len(offers), cards="\n".join(cards), names=names)


def ranking_from_ranks(ranks: dict[str, int], comments: dict[str, str], offers: list[Offer]) -> Ranking:
    """A Ranking from the page's answer: every candidate ranked 1..K, or only best and worst."""
    k = len(offers)
    names = [o.name for o in offers]
    if any(n not in names for n in ranks) or any(n not in names for n in comments):
        raise FeedbackError("the answer names candidates that are not on the page")
    values = list(ranks.values())
    if len(ranks) == k and sorted(values) == list(range(1, k + 1)):
        order = sorted(ranks, key=lambda n: ranks[n])
        return Ranking(order=order, complete=True, comments=comments)
    if k > 2 and len(ranks) == 2 and sorted(values) == [1, k]:
        best = next(n for n, r in ranks.items() if r == 1)
        worst = next(n for n, r in ranks.items() if r == k)
        middle = [n for n in names if n not in (best, worst)]
        return Ranking(order=[best, *middle, worst], complete=False, comments=comments)
    raise FeedbackError(
        f"give every video a different rank from 1 to {k}, or only rank 1 (best) and {k} (worst)"
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    offers: list[Offer]
    iteration: int
    result: Ranking | None
    done: threading.Event


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            page = render_page(self.server.offers, self.server.iteration)
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
            return
        if self.path.startswith("/video/"):
            try:
                offer = self.server.offers[int(self.path.removeprefix("/video/"))]
            except (ValueError, IndexError):
                offer = None
            if offer is not None and offer.video is not None and offer.video.is_file():
                self._send(HTTPStatus.OK, offer.video.read_bytes(), "video/mp4")
                return
        self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    def do_POST(self) -> None:
        if self.path != "/rank":
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
            return
        length = min(int(self.headers.get("Content-Length", "0") or 0), 1 << 20)
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
            ranks = {str(k): int(v) for k, v in dict(data.get("ranks", {})).items()}
            comments = {str(k): str(v)[:2000] for k, v in dict(data.get("comments", {})).items()}
            ranking = ranking_from_ranks(ranks, comments, self.server.offers)
        except (ValueError, TypeError, AttributeError, FeedbackError) as exc:
            body = json.dumps({"error": str(exc)}).encode()
            self._send(HTTPStatus.BAD_REQUEST, body, "application/json")
            return
        self.server.result = ranking
        self._send(HTTPStatus.OK, b'{"ok": true}', "application/json")
        self.server.done.set()


class WebRanker:
    """A judge whose rankings come from the page; critiques come from the terminal."""

    def __init__(
        self,
        announce: Callable[[str], None],
        terminal: TerminalHuman | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_url: Callable[[str], None] | None = None,
    ) -> None:
        self.announce = announce
        self.terminal = terminal
        self.host = host
        self.port = port
        self.on_url = on_url
        """Called with the page's address (opens a browser, or a test's headless one)."""

    def critique(self, offer: Offer, iteration: int) -> str:
        if self.terminal is None:
            raise FeedbackError("critique needs a terminal")
        return self.terminal.critique(offer, iteration)

    def rank(self, offers: list[Offer], iteration: int) -> Ranking:
        server = _Server((self.host, self.port), _Handler)
        server.offers = offers
        server.iteration = iteration
        server.result = None
        server.done = threading.Event()
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        url = f"http://{self.host}:{server.server_address[1]}/"
        try:
            self.announce(
                f"rank iteration {iteration}'s {len(offers)} candidates at {url} (waiting for the page)"
            )
            if self.on_url is not None:
                self.on_url(url)
            server.done.wait()
        finally:
            server.shutdown()
            server.server_close()
        assert server.result is not None
        return server.result
