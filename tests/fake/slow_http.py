#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fake HTTP server for tests of src/http.c (python3 stdlib only).

Listens on 127.0.0.1 with random ports and prints them on stdout:
    line 1: the HTTP port
    line 2: the UDP "tick" port
then serves until killed.

Ticks make the slow responses causal instead of timed: a /slow response
sends each chunk only after a tick datagram arrived that is newer than the
one that released the previous chunk. A client whose event loop blocked
inside a transfer could send no ticks, so its transfers could not finish.
A tick datagram's payload is its sequence number in decimal; the chunk
it releases carries that number, so the client can check its own order.

Endpoints:
    /slow?id=K&chunks=N    N lines "id KK chunk NNN tick TTTTTTTT\\n", one per tick
    /big?bytes=N           N bytes of a repeating pattern, Content-Length set
    /status?code=C&body=B&retry_after=S   status C, text body B, optional Retry-After
    /echo                  any method: "METHOD\\nX-Test\\nUser-Agent\\n" + request body
    /hang                  reads the request, never answers
"""

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TICK_WAIT_SEC = 10  # a stalled client fails its test instead of hanging it
HANG_SEC = 120
PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyz\n"

tick_cond = threading.Condition()
tick_latest = 0


def tick_receiver(sock):
    global tick_latest
    while True:
        data, _ = sock.recvfrom(64)
        try:
            n = int(data.decode().strip())
        except ValueError:
            continue
        with tick_cond:
            if n > tick_latest:
                tick_latest = n
                tick_cond.notify_all()


def wait_tick_after(seen):
    """Returns the first tick number > seen, or None after TICK_WAIT_SEC."""
    with tick_cond:
        if tick_cond.wait_for(lambda: tick_latest > seen, timeout=TICK_WAIT_SEC):
            return tick_latest
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slow_http/1"

    def setup(self):
        super().setup()
        # One chunk per segment: no Nagle delay between a tick and its chunk.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def query(self):
        parts = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        return parts.path, q

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, code, body, ctype="text/plain; charset=utf-8", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        path, q = self.query()
        body = self.read_body()
        if path == "/slow":
            self.slow(int(q.get("id", "0")), int(q.get("chunks", "20")))
        elif path == "/big":
            n = int(q.get("bytes", "0"))
            data = (PATTERN * (n // len(PATTERN) + 1))[:n]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for i in range(0, n, 16384):
                self.wfile.write(data[i:i + 16384])
        elif path == "/status":
            extra = []
            if "retry_after" in q:
                extra.append(("Retry-After", q["retry_after"]))
            self.reply(int(q.get("code", "200")), q.get("body", "").encode(), extra=extra)
        elif path == "/echo":
            head = "%s\n%s\n%s\n" % (self.command, self.headers.get("X-Test", ""),
                                     self.headers.get("User-Agent", ""))
            self.reply(200, head.encode() + body, ctype="application/octet-stream")
        elif path == "/hang":
            threading.Event().wait(HANG_SEC)
            self.close_connection = True
        else:
            self.reply(404, b"no such endpoint\n")

    def slow(self, rid, chunks):
        line = "id %02d chunk %03d tick %08d\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(chunks * len(line % (0, 0, 0))))
        self.end_headers()
        self.wfile.flush()
        with tick_cond:
            seen = tick_latest
        for i in range(chunks):
            t = wait_tick_after(seen)
            if t is None:
                self.close_connection = True  # no tick: the client's loop is stuck
                return
            seen = t
            self.wfile.write((line % (rid, i, t)).encode())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients aborting on purpose (body cap, timeouts) are expected


def main():
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    threading.Thread(target=tick_receiver, args=(udp,), daemon=True).start()
    httpd = Server(("127.0.0.1", 0), Handler)
    sys.stdout.write("%d\n%d\n" % (httpd.server_address[1], udp.getsockname()[1]))
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
