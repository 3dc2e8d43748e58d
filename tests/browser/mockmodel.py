"""A deterministic streaming model for the browser tests: an OpenAI Chat Completions server
on loopback (the gateway's real provider code talks to it, only ``baseUrl`` points here).

The reply streams ``N`` chunks with a delay between them, so streaming and Stop can be seen in
a browser. The last user message may set them: ``[chunks=40 delay=100]`` (delay in ms);
the default is the whole text, 20 ms a word. Chunk ``i`` is word ``i`` of a fixed text plus a space
(:func:`chunks`), so tests know exactly what the text looks like at every step.

Run as a process: ``python -m tests.browser.mockmodel`` prints ``PORT <n>`` once listening.
"""

from __future__ import annotations

import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIRECTIVE = re.compile(r"\[chunks=(\d+)(?: delay=(\d+))?\]")
DEFAULT_DELAY_MS = 20
TEXT = (
    "Here is a streamed reply from the test model. Each word arrives on its own, a moment "
    "after the one before, so you can watch the answer grow and stop it whenever you like. "
    "The gateway forwards every piece as a chat event and keeps the whole reply in the "
    "session's history."
).split()


def chunks(count: int) -> list[str]:
    """The first ``count`` chunks of every reply (the text repeats if it runs out)."""
    return [TEXT[i % len(TEXT)] + " " for i in range(count)]


def plan(body: dict[str, object]) -> tuple[list[str], float]:
    """The chunks to send and the delay between them, from the last user message."""
    messages = body.get("messages")
    last = ""
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict) and m.get("role") == "user":
                content = m.get("content")
                if isinstance(content, str):
                    last = content
                elif isinstance(content, list):
                    last = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    match = DIRECTIVE.search(last)
    count = int(match.group(1)) if match else len(TEXT)
    delay = int(match.group(2)) if match and match.group(2) else DEFAULT_DELAY_MS
    return chunks(count), delay / 1000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _event(self, data: object) -> None:
        payload = f"data: {json.dumps(data)}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        pieces, delay = plan(body)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "model": "mock"}
        try:
            self._event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
            for i, chunk in enumerate(pieces):
                if i:
                    time.sleep(delay)
                self._event({**base, "choices": [{"index": 0, "delta": {"content": chunk}}]})
            self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            usage = {"prompt_tokens": 3, "completion_tokens": len(pieces), "total_tokens": 9}
            self._event({**base, "choices": [], "usage": usage})
            self.wfile.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway stopped the run (Stop): nothing more to send


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
