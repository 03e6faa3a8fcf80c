#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake Anthropic Messages API for the real Claude Code CLI (python3 stdlib).

usage: fake_messages_api.py SCRIPT.json [--log REQUESTS.jsonl]

Listens on 127.0.0.1 on a random port and prints the port on the first line
of stdout, then serves until killed. Every request is logged to stderr (one
line) and, with --log, as one JSON object per line to REQUESTS.jsonl, with the
rule that answered it.

Endpoints:
    POST /v1/messages[?beta=true]               the conversation, scripted below;
                                                SSE if "stream": true, else JSON
    POST /v1/messages/count_tokens[?beta=true]  {"input_tokens": N}
    anything else                               404, an Anthropic-style error
                                                (the CLI sends HEAD / to warm up
                                                its connection; a 404 does for it)

The script is JSON: {"rules": [RULE, ...]}. For each /v1/messages request the
first rule whose conditions all hold answers it:

    "main": true|false       the request offers tools (the agent's own turns)
                             or not (the CLI's side requests: titles, quota, ...)
    "contains": "S"          some user turn in the request's messages contains S
                             (text blocks and tool results alike)
    "not_contains": "S"      no user turn contains S
    "min_tool_results": N    the messages hold at least N tool results
    "max_tool_results": N    ... at most N

and its answer is

    "refuse": {"status": 429, "headers": {...}, "type": "rate_limit_error", "message": "..."}
                             an HTTP error with these headers (e.g. the
                             anthropic-ratelimit-unified-* of a usage limit)

or

    "text": "T"              a text block (may be "")
    "tool_use": {"name": "Write", "input": {...}}   then a tool_use block;
                             stop_reason "tool_use", else "end_turn"

In strings of the answer, {n} is the number of tool results in the request's
messages, {last_result} the text of the last one, and {count} the number of
/v1/messages requests answered before.
A request no rule matches gets the text "OK." (end_turn), so a side request
never sees a tool call.
"""

import argparse
import itertools
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Request headers worth keeping in the log.
HEADERS = ("x-api-key", "authorization", "anthropic-version", "anthropic-beta", "user-agent",
           "x-app", "x-claude-code-session-id")

lock = threading.Lock()
counter = itertools.count()
script = {"rules": []}
log_file = None


def user_texts(messages):
    """Every piece of text in the user turns: text blocks and tool results."""
    out = []

    def walk(content):
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "text":
                    out.append(block.get("text", ""))
                elif block.get("type") == "tool_result":
                    walk(block.get("content", ""))

    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user":
            walk(m.get("content"))
    return out


def last_tool_result(messages):
    """The text of the last tool result in the messages, or ""."""
    text = ""
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), list):
            for b in m["content"]:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    c = b.get("content", "")
                    if isinstance(c, list):
                        c = "".join(x.get("text", "") for x in c if isinstance(x, dict))
                    text = c if isinstance(c, str) else ""
    return text


def system_text(system):
    """The system prompt as one string (a string, or a list of text blocks)."""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
    return ""


def tool_results(messages):
    n = 0
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), list):
            n += sum(1 for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_result")
    return n


def matches(rule, req, texts, n_results):
    main = bool(req.get("tools"))
    if "main" in rule and rule["main"] != main:
        return False
    if "contains" in rule and not any(rule["contains"] in t for t in texts):
        return False
    if "not_contains" in rule and any(rule["not_contains"] in t for t in texts):
        return False
    if "min_tool_results" in rule and n_results < rule["min_tool_results"]:
        return False
    if "max_tool_results" in rule and n_results > rule["max_tool_results"]:
        return False
    return True


def fill(value, subst):
    """Substitutes {n} and {count} in every string of a JSON value."""
    if isinstance(value, str):
        for k, v in subst.items():
            value = value.replace("{" + k + "}", str(v))
        return value
    if isinstance(value, list):
        return [fill(v, subst) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, subst) for k, v in value.items()}
    return value


def answer_for(req):
    """(rule index or None, content blocks, stop_reason) for a messages request."""
    messages = req.get("messages") or []
    texts = user_texts(messages)
    n_results = tool_results(messages)
    count = next(counter)
    for i, rule in enumerate(script.get("rules", [])):
        if matches(rule, req, texts, n_results):
            rule = fill(rule, {"n": n_results, "count": count, "last_result": last_tool_result(messages)})
            blocks = []
            if "text" in rule:
                blocks.append({"type": "text", "text": rule["text"]})
            if "tool_use" in rule:
                blocks.append({"type": "tool_use", "id": "toolu_fake_" + uuid.uuid4().hex[:20],
                               "name": rule["tool_use"]["name"], "input": rule["tool_use"].get("input", {})})
            if not blocks:
                blocks.append({"type": "text", "text": ""})
            return i, blocks, "tool_use" if "tool_use" in rule else "end_turn"
    return None, [{"type": "text", "text": "OK."}], "end_turn"


def estimate_tokens(req):
    return max(1, len(json.dumps(req)) // 4)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-messages-api/1"

    def log_message(self, fmt, *args):
        pass  # one line per request, below, instead

    def record(self, entry):
        line = json.dumps(entry)
        print(f"fake-api: {self.command} {self.path} -> {entry.get('status')} "
              f"rule={entry.get('rule')} stop={entry.get('stop_reason')}", file=sys.stderr, flush=True)
        if log_file:
            with lock:
                log_file.write(line + "\n")
                log_file.flush()

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        try:
            return json.loads(data) if data else {}
        except ValueError:
            return None

    def send(self, status, ctype, payload, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("request-id", "req_fake_" + uuid.uuid4().hex[:16])
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has headers only
            self.wfile.write(payload)
        self.wfile.flush()

    def send_json(self, status, obj):
        self.send(status, "application/json", json.dumps(obj).encode())

    def error(self, status, kind, message, entry):
        entry["status"] = status
        self.record(entry)
        self.send_json(status, {"type": "error", "error": {"type": kind, "message": message}})

    def do_GET(self):
        self.unknown()

    def do_HEAD(self):
        self.unknown()

    def do_PUT(self):
        self.unknown()

    def do_DELETE(self):
        self.unknown()

    def unknown(self):
        if self.command in ("POST", "PUT"):
            self.body()
        self.error(404, "not_found_error", f"fake API: no {self.command} {self.path}",
                   {"method": self.command, "path": self.path})

    def do_POST(self):
        path = urlsplit(self.path).path
        req = self.body()
        entry = {"method": "POST", "path": self.path}
        if req is None or not isinstance(req, dict):
            return self.error(400, "invalid_request_error", "body is not a JSON object", entry)
        if path == "/v1/messages/count_tokens":
            entry["status"] = 200
            self.record(entry)
            return self.send_json(200, {"input_tokens": estimate_tokens(req)})
        if path != "/v1/messages":
            return self.error(404, "not_found_error", f"fake API: no POST {path}", entry)
        self.messages(req, entry)

    def messages(self, req, entry):
        messages = req.get("messages") or []
        rule, blocks, stop = answer_for(req)
        refusal = script["rules"][rule].get("refuse") if rule is not None else None
        if refusal:
            # An HTTP error with the headers the real API sends with it.
            entry.update({"status": refusal["status"], "rule": rule, "main": bool(req.get("tools"))})
            self.record(entry)
            body = {"type": "error", "error": {"type": refusal.get("type", "rate_limit_error"),
                                               "message": refusal.get("message", "refused")}}
            return self.send(refusal["status"], "application/json", json.dumps(body).encode(),
                             refusal.get("headers", {}))
        texts = user_texts(messages)
        entry.update({
            "status": 200, "rule": rule, "stop_reason": stop, "stream": bool(req.get("stream")),
            "model": req.get("model"), "main": bool(req.get("tools")),
            "n_tools": len(req.get("tools") or []), "n_messages": len(messages),
            "tool_results": tool_results(messages),
            "last_user_text": texts[-1][:500] if texts else None,
            "answer": blocks,
            "system_tail": system_text(req.get("system"))[-1000:],
            "metadata": req.get("metadata"),
            "headers": {k: self.headers.get(k) for k in HEADERS if self.headers.get(k) is not None},
        })
        self.record(entry)
        model = req.get("model") or "claude-sonnet-4-5"
        in_tokens = estimate_tokens(req)
        out_tokens = 10 + sum(len(json.dumps(b)) // 4 for b in blocks)
        msg_id = "msg_fake_" + uuid.uuid4().hex[:20]
        if not req.get("stream"):
            return self.send_json(200, {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": blocks, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})

        events = [("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": in_tokens, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
            ("ping", {"type": "ping"})]
        for i, b in enumerate(blocks):
            if b["type"] == "text":
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "text", "text": ""}}))
                if b["text"]:
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "text_delta", "text": b["text"]}}))
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "tool_use", "id": b["id"],
                                                                         "name": b["name"], "input": {}}}))
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "input_json_delta",
                                                                 "partial_json": json.dumps(b["input"])}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": {"output_tokens": out_tokens}}))
        events.append(("message_stop", {"type": "message_stop"}))
        payload = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
        self.send(200, "text/event-stream; charset=utf-8", payload, {"Cache-Control": "no-cache"})


def main():
    global script, log_file
    p = argparse.ArgumentParser(description="fake Anthropic Messages API on 127.0.0.1")
    p.add_argument("script", help="JSON file of rules")
    p.add_argument("--log", help="append every request, as JSON lines, to this file")
    args = p.parse_args()
    with open(args.script) as f:
        script = json.load(f)
    if args.log:
        log_file = open(args.log, "a")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
