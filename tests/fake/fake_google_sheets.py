#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake Google for the port-sheet sync's tests (python3 stdlib only).

Listens on 127.0.0.1 with a random port and prints it as stdout's first
line, then serves until killed. With --port-file PATH it also writes the
port there (for tests that start it in the background).

Google's side:
    POST /token                               the OAuth token endpoint (form body)
    GET  /v4/spreadsheets/ID/values/RANGE     values.get: the sheet's values
    PUT  /v4/spreadsheets/ID/values/RANGE     values.update: recorded, answered 200
Answers come from the scripts first (FIFO per endpoint), else the default:
a new access token "fake-access-N"; {"range", "majorDimension": "ROWS",
"values"} with "values" left out when the sheet is empty (as Google does);
an updateValues summary.

Control (the tests' side):
    POST /_sheet   {"values": [[...], ...]}            what values.get serves
    POST /_script  {"token": [A...], "get": [A...], "put": [A...], "clear": bool}
                   A = {"status": 200, "body": obj-or-str, "raw": str,
                        "content_type": str, "retry_after": str,
                        "hang": seconds (read the request, never answer)}
    GET  /_stats   {"token": n, "get": n, "put": n, "requests": [{"method",
                   "path", "query", "auth", "time", "body"}]}
    POST /_reset   clears the counters, the scripts and the token numbering
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

HANG_MAX_SEC = 60

lock = threading.Lock()
state = {
    "values": [["port", "city"], ["Hamburg", "DE"]],
    "scripts": {"token": [], "get": [], "put": []},
    "counts": {"token": 0, "get": 0, "put": 0},
    "requests": [],
    "issued": 0,
}


def reset():
    state["scripts"] = {"token": [], "get": [], "put": []}
    state["counts"] = {"token": 0, "get": 0, "put": 0}
    state["requests"] = []
    state["issued"] = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake_google_sheets/1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, code, body, ctype="application/json; charset=UTF-8", retry_after=None):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def scripted(self, kind):
        with lock:
            q = state["scripts"][kind]
            return q.pop(0) if q else None

    def answer(self, a):
        """Sends a scripted answer; False if it was a hang."""
        if a.get("hang"):
            time.sleep(min(float(a["hang"]), HANG_MAX_SEC))
            self.close_connection = True
            return False
        body = a["raw"] if "raw" in a else a.get("body", "")
        self.send(int(a.get("status", 200)), body, a.get("content_type", "application/json; charset=UTF-8"),
                  a.get("retry_after"))
        return True

    def record(self, kind, body):
        parts = urlsplit(self.path)
        rec = {"method": self.command, "path": unquote(parts.path), "raw_path": parts.path,
               "query": parts.query, "auth": self.headers.get("Authorization", ""),
               "time": time.monotonic(), "body": None}
        if kind == "put":
            try:
                rec["body"] = json.loads(body)
            except ValueError:
                rec["body"] = body.decode("utf-8", "replace")
        elif kind == "token":
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            # Never keep secrets beyond what a test checks.
            rec["body"] = {k: form.get(k) for k in ("grant_type", "client_id", "client_secret",
                                                    "refresh_token")}
        with lock:
            state["counts"][kind] += 1
            state["requests"].append(rec)

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path == "/_stats":
            with lock:
                self.send(200, {**state["counts"], "requests": state["requests"]})
            return
        if parts.path.startswith("/v4/spreadsheets/") and "/values/" in parts.path:
            self.record("get", b"")
            a = self.scripted("get")
            if a:
                self.answer(a)
                return
            rng = unquote(parts.path.split("/values/", 1)[1])
            with lock:
                values = state["values"]
            out = {"range": rng, "majorDimension": "ROWS"}
            if values:
                out["values"] = values
            self.send(200, out)
            return
        self.send(404, {"error": {"code": 404, "message": "Requested entity was not found.",
                                  "status": "NOT_FOUND"}})

    def do_PUT(self):
        parts = urlsplit(self.path)
        body = self.body()
        if parts.path.startswith("/v4/spreadsheets/") and "/values/" in parts.path:
            self.record("put", body)
            a = self.scripted("put")
            if a:
                self.answer(a)
                return
            try:
                rows = json.loads(body).get("values", [])
            except (ValueError, AttributeError):
                self.send(400, {"error": {"code": 400, "message": "Invalid JSON payload received.",
                                          "status": "INVALID_ARGUMENT"}})
                return
            self.send(200, {"spreadsheetId": parts.path.split("/")[3],
                            "updatedRange": unquote(parts.path.split("/values/", 1)[1]),
                            "updatedRows": len(rows)})
            return
        self.send(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})

    def do_POST(self):
        parts = urlsplit(self.path)
        body = self.body()
        if parts.path == "/token":
            self.record("token", body)
            a = self.scripted("token")
            if a:
                self.answer(a)
                return
            with lock:
                state["issued"] += 1
                n = state["issued"]
            self.send(200, {"access_token": f"fake-access-{n}", "expires_in": 3599, "token_type": "Bearer",
                            "scope": "https://www.googleapis.com/auth/spreadsheets"})
            return
        try:
            msg = json.loads(body or b"{}")
        except ValueError:
            self.send(400, {"error": "bad control JSON"})
            return
        with lock:
            if parts.path == "/_sheet":
                state["values"] = msg.get("values")
            elif parts.path == "/_script":
                if msg.get("clear"):
                    state["scripts"] = {"token": [], "get": [], "put": []}
                for k in ("token", "get", "put"):
                    state["scripts"][k].extend(msg.get(k, []))
            elif parts.path == "/_reset":
                reset()
            else:
                self.send(404, {"error": "no such control endpoint"})
                return
        self.send(200, {"ok": True})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that time out and hang up are part of the tests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file")
    args = ap.parse_args()
    httpd = Server(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.rename(args.port_file + ".tmp", args.port_file)
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
