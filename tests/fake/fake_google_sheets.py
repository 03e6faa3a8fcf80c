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
    POST /hook...                             an alert webhook (not Google's, but
                                              scripted the same way): 200 {"ok": true}
Answers come from the scripts first (FIFO per endpoint), else the default:
a new access token "fake-access-N"; {"range", "majorDimension": "ROWS",
"values"} with "values" left out when the sheet is empty (as Google does);
an updateValues summary.

Control (the tests' side):
    POST /_sheet   {"values": [[...], ...]}            what values.get serves
    POST /_script  {"token": [A...], "get": [A...], "put": [A...], "hook": [A...],
                    "clear": bool}
                   A = {"status": 200, "body": obj-or-str, "raw": str,
                        "content_type": str, "retry_after": str,
                        "hang": seconds (read the request, never answer),
                        "truncate": true (Content-Length 100 bytes more than
                                          sent, then the connection closed),
                        "huge": bytes (a JSON body of that size, streamed),
                        "drip": seconds (headers, then one body byte a second,
                                         never the whole body)}
    GET  /_stats   {"token": n, "get": n, "put": n, "hook": n, "requests": [{"method",
                   "path", "query", "auth", "time", "body"}], "tls_failed": n,
                   "tls_failures": [time, ...]}
    POST /_reset   clears the counters, the scripts and the token numbering
    POST /_revoke  {"refresh": bool}: every access token issued so far (and any
                   the fake did not issue, such as one a test wrote into the
                   token file) is refused from now on, values.get/update
                   answering 401 UNAUTHENTICATED as Google does; with
                   "refresh", the refresh token too (invalid_grant), as when
                   the user removes the app's access

With --tls-cert PEM --tls-key PEM it speaks HTTPS only (the control side
too); a client that refuses the certificate never gets to send a request,
so failed handshakes are counted instead (tls_failed, with the times the
connections arrived).
"""

import argparse
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

HANG_MAX_SEC = 60
KINDS = ("token", "get", "put", "hook")

lock = threading.Lock()
state = {
    "values": [["port", "city"], ["Hamburg", "DE"]],
    "scripts": {k: [] for k in KINDS},
    "counts": {k: 0 for k in KINDS},
    "requests": [],
    "issued": 0,
    "tls_failures": [],
    "valid_after": None,    # None: any bearer token works; N: only fake-access-M, M > N
    "refresh_revoked": False,
}

UNAUTHENTICATED = {"error": {
    "code": 401, "status": "UNAUTHENTICATED",
    "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
               "cookie or other valid authentication credential."}}
INVALID_GRANT = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}


def token_valid(auth):
    """Does the Authorization header carry an access token still good?"""
    with lock:
        after = state["valid_after"]
    if after is None:
        return True
    token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
    prefix = "fake-access-"
    return token.startswith(prefix) and token[len(prefix):].isdigit() and int(token[len(prefix):]) > after


def reset():
    state["scripts"] = {k: [] for k in KINDS}
    state["counts"] = {k: 0 for k in KINDS}
    state["requests"] = []
    state["issued"] = 0
    state["tls_failures"] = []
    state["valid_after"] = None
    state["refresh_revoked"] = False


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
        status, ctype = int(a.get("status", 200)), a.get("content_type", "application/json; charset=UTF-8")
        try:
            if a.get("truncate") or a.get("drip"):
                self.send_cut(status, body, ctype, a)
            elif a.get("huge"):
                self.send_huge(status, int(a["huge"]), ctype)
            else:
                self.send(status, body, ctype, a.get("retry_after"))
        except OSError:
            self.close_connection = True  # the client gave up on the answer: part of the tests
        return True

    def send_cut(self, code, body, ctype, a):
        """An answer whose body never arrives whole: with "truncate", all but
        the 100 bytes Content-Length still promises, then the connection is
        closed; with "drip", one byte a second for that many seconds."""
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if a.get("drip"):
            body = body.ljust(1000, b" ")
        self.close_connection = True
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) + (100 if a.get("truncate") else 0)))
        self.send_header("Connection", "close")
        self.end_headers()
        if a.get("truncate"):
            self.wfile.write(body)
            self.wfile.flush()
            return
        self.wfile.flush()
        for i in range(min(int(a["drip"]), HANG_MAX_SEC, len(body) - 1)):
            self.wfile.write(body[i:i + 1])
            self.wfile.flush()
            time.sleep(1)

    def send_huge(self, code, n, ctype):
        """A syntactically valid JSON body of n bytes, in 64 KiB writes."""
        head, tail = b'{"values": [["', b'"]]}'
        n = max(n, len(head) + len(tail))
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        self.wfile.write(head)
        left, chunk = n - len(head) - len(tail), b"x" * 65536
        while left > 0:
            self.wfile.write(chunk[:left])
            left -= min(left, len(chunk))
        self.wfile.write(tail)

    def record(self, kind, body):
        parts = urlsplit(self.path)
        rec = {"method": self.command, "path": unquote(parts.path), "raw_path": parts.path,
               "query": parts.query, "auth": self.headers.get("Authorization", ""),
               "time": time.monotonic(), "body": None}
        if kind in ("put", "hook"):
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
                self.send(200, {**state["counts"], "requests": state["requests"],
                                "tls_failed": len(state["tls_failures"]), "tls_failures": state["tls_failures"]})
            return
        if parts.path.startswith("/v4/spreadsheets/") and "/values/" in parts.path:
            self.record("get", b"")
            a = self.scripted("get")
            if a:
                self.answer(a)
                return
            if not token_valid(self.headers.get("Authorization", "")):
                self.send(401, UNAUTHENTICATED)
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
            if not token_valid(self.headers.get("Authorization", "")):
                self.send(401, UNAUTHENTICATED)
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
                revoked = state["refresh_revoked"]
            if revoked:
                self.send(400, INVALID_GRANT)
                return
            with lock:
                state["issued"] += 1
                n = state["issued"]
            self.send(200, {"access_token": f"fake-access-{n}", "expires_in": 3599, "token_type": "Bearer",
                            "scope": "https://www.googleapis.com/auth/spreadsheets"})
            return
        if parts.path.startswith("/hook"):
            self.record("hook", body)
            a = self.scripted("hook")
            if a:
                self.answer(a)
                return
            self.send(200, {"ok": True})
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
                    state["scripts"] = {k: [] for k in KINDS}
                for k in KINDS:
                    state["scripts"][k].extend(msg.get(k, []))
            elif parts.path == "/_reset":
                reset()
            elif parts.path == "/_revoke":
                state["valid_after"] = state["issued"]
                state["refresh_revoked"] = bool(msg.get("refresh"))
            else:
                self.send(404, {"error": "no such control endpoint"})
                return
        self.send(200, {"ok": True})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    tls = None  # an ssl.SSLContext with --tls-cert

    def handle_error(self, request, client_address):
        pass  # clients that time out and hang up are part of the tests

    def finish_request(self, request, client_address):
        # The handshake runs here, in the connection's own thread, so a
        # client that never completes it cannot stall the accept loop.
        if self.tls:
            # Stamped at arrival, not when the client gives up: the client's
            # retry timer starts after the arrival, not necessarily after
            # the moment its refusal reaches us (the check takes it a while).
            arrived = time.monotonic()
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                with lock:
                    state["tls_failures"].append(arrived)
                return
            request.settimeout(None)
            try:
                super().finish_request(request, client_address)
            finally:
                request.close()
            return
        super().finish_request(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = ap.parse_args()
    httpd = Server(("127.0.0.1", 0), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        httpd.tls = ctx
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
