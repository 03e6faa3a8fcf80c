#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake Google for the OAuth tests: token endpoint, consent page, Sheets
values.get. python3 stdlib only; listens on 127.0.0.1 at a random port,
printed as the first line of stdout.

  POST /token      grant_type refresh_token | authorization_code (PKCE S256
                   checked against the /auth request) | jwt-bearer.
                   Scripted answers first (POST /_script), then the default:
                   a fresh access token.
  GET  /auth       checks client_id, redirect_uri, response_type=code,
                   code_challenge_method=S256, code_challenge, state, scope;
                   answers 302 to redirect_uri?code=...&state=...
  GET  /v4/spreadsheets/ID/values/RANGE   needs a Bearer token it issued.
  GET  /_stats     request counts by kind (JSON).
  GET  /_requests  every token request's form (JSON list).
  POST /_script    JSON list of answers for the next token requests, each
                   {"status": 200, "json": {...} | "raw": "text",
                    "content_type": "...", "headers": {...}, "hang": seconds,
                    "truncate": true}. Appends; {"reset": true, "answers": [...]}
                   first clears the script, the counts and the request log.
  POST /_config    {"client_id": ..., "client_secret": ..., "values": [[...]]}
"""

import base64
import hashlib
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
lock = threading.Lock()
state = {
    "script": [],
    "stats": {},
    "requests": [],
    "codes": {},          # code -> {challenge, redirect_uri, client_id}
    "access_tokens": set(),
    "refresh_tokens": set(),
    "client_id": None,    # None: accept any
    "client_secret": None,
    "values": [["port", "service"], ["8080", "web"], ["5432", "db"]],
    "n": 0,
}


def count(kind):
    with lock:
        state["stats"][kind] = state["stats"].get(kind, 0) + 1


def new_token(prefix):
    with lock:
        state["n"] += 1
        return f"{prefix}{state['n']}-{secrets.token_hex(6)}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, content_type="application/json", headers=None, truncate=False):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data) + (100 if truncate else 0)))
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def send_json(self, status, obj, **kw):
        self.send(status, json.dumps(obj), **kw)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # --- GET ---
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if url.path == "/_stats":
            with lock:
                return self.send_json(200, state["stats"])
        if url.path == "/_requests":
            with lock:
                return self.send_json(200, state["requests"])
        if url.path == "/auth":
            return self.auth(q)
        if url.path.startswith("/v4/spreadsheets/"):
            return self.values(url.path)
        self.send_json(404, {"error": {"code": 404, "message": "not found"}})

    def auth(self, q):
        count("auth")
        want = {"response_type": "code", "code_challenge_method": "S256", "scope": SCOPE,
                "access_type": "offline"}
        for k, v in want.items():
            if q.get(k) != v:
                return self.send(400, f"bad {k}: {q.get(k)!r}", "text/plain")
        for k in ("client_id", "redirect_uri", "code_challenge", "state"):
            if not q.get(k):
                return self.send(400, f"missing {k}", "text/plain")
        if state["client_id"] and q["client_id"] != state["client_id"]:
            return self.send(400, "invalid_client", "text/plain")
        if not q["redirect_uri"].startswith("http://127.0.0.1:"):
            return self.send(400, "redirect_uri must be a loopback address", "text/plain")
        code = "4/fake-code-" + secrets.token_urlsafe(12)
        with lock:
            state["codes"][code] = {"challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"],
                                    "client_id": q["client_id"]}
        sep = "&" if "?" in q["redirect_uri"] else "?"
        location = q["redirect_uri"] + sep + urllib.parse.urlencode({"state": q["state"], "code": code,
                                                                     "scope": SCOPE})
        self.send(302, "", None, headers={"Location": location})

    def values(self, path):
        count("values")
        auth = self.headers.get("Authorization", "")
        with lock:
            ok = auth.startswith("Bearer ") and auth[7:] in state["access_tokens"]
            values = state["values"]
        if not ok:
            return self.send_json(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                                  "status": "UNAUTHENTICATED"}})
        parts = path.split("/")
        rng = urllib.parse.unquote(parts[-1]) if len(parts) >= 6 else ""
        self.send_json(200, {"range": rng, "majorDimension": "ROWS", "values": values})

    # --- POST ---
    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        body = self.read_body()
        if url.path == "/_script":
            data = json.loads(body or b"[]")
            with lock:
                if isinstance(data, dict):
                    if data.get("reset"):
                        state["script"].clear()
                        state["stats"].clear()
                        state["requests"].clear()
                        state["refresh_tokens"].clear()
                    data = data.get("answers", [])
                state["script"].extend(data)
            return self.send_json(200, {"queued": len(state["script"])})
        if url.path == "/_config":
            data = json.loads(body or b"{}")
            with lock:
                state.update({k: v for k, v in data.items() if k in ("client_id", "client_secret", "values")})
            return self.send_json(200, {})
        if url.path == "/token":
            return self.token(body)
        self.send_json(404, {"error": "not_found"})

    def token(self, body):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type", "")
        kind = {"refresh_token": "refresh", "authorization_code": "code",
                "urn:ietf:params:oauth:grant-type:jwt-bearer": "jwt"}.get(grant, "other")
        count("token")
        count("token_" + kind)
        with lock:
            state["requests"].append({"form": form, "content_type": self.headers.get("Content-Type")})
            step = state["script"].pop(0) if state["script"] else None
        if step is not None:
            return self.scripted(step)
        if state["client_secret"] is not None and kind in ("refresh", "code") and \
                form.get("client_secret") != state["client_secret"]:
            return self.send_json(401, {"error": "invalid_client", "error_description": "The OAuth client was not found."})
        if kind == "refresh":
            with lock:
                known = form.get("refresh_token") in state["refresh_tokens"] or not state["refresh_tokens"]
            if not known:
                return self.send_json(400, {"error": "invalid_grant", "error_description": "Bad Request"})
            return self.send_json(200, self.issue(refresh=False))
        if kind == "code":
            with lock:
                c = state["codes"].pop(form.get("code", ""), None)
            if not c or c["redirect_uri"] != form.get("redirect_uri") or c["client_id"] != form.get("client_id"):
                return self.send_json(400, {"error": "invalid_grant", "error_description": "Malformed auth code."})
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != c["challenge"]:
                return self.send_json(400, {"error": "invalid_grant", "error_description": "Invalid code verifier."})
            return self.send_json(200, self.issue(refresh=True))
        if kind == "jwt":
            if form.get("assertion", "").count(".") != 2:
                return self.send_json(400, {"error": "invalid_grant", "error_description": "Invalid JWT."})
            return self.send_json(200, self.issue(refresh=False))
        self.send_json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: " + grant})

    def issue(self, refresh, expires_in=3599):
        answer = {"access_token": new_token("ya29.fake-"), "expires_in": expires_in, "scope": SCOPE,
                  "token_type": "Bearer"}
        if refresh:
            answer["refresh_token"] = new_token("1//fake-refresh-")
        with lock:
            state["access_tokens"].add(answer["access_token"])
            if refresh:
                state["refresh_tokens"].add(answer["refresh_token"])
        return answer

    def scripted(self, step):
        if step.get("hang"):
            time.sleep(float(step["hang"]))
        status = int(step.get("status", 200))
        if "issue" in step:  # a real token, with these fields changed
            obj = self.issue(refresh=bool(step["issue"].get("refresh_token")), expires_in=step["issue"].get("expires_in", 3599))
            return self.send_json(status, obj, headers=step.get("headers"))
        if "raw" in step:
            return self.send(status, step["raw"], step.get("content_type", "application/json"),
                             headers=step.get("headers"), truncate=step.get("truncate", False))
        return self.send(status, json.dumps(step.get("json", {})), step.get("content_type", "application/json"),
                         headers=step.get("headers"), truncate=step.get("truncate", False))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up (timeouts under test) are expected


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
