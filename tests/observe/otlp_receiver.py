#!/usr/bin/env python3
"""tests/observe/otlp_receiver.py: what the tracing tests talk to, with Python's standard library only.

Two HTTP servers on 127.0.0.1 (any free ports):
  - an OTLP/HTTP JSON receiver: POST /v1/traces bodies are saved as OUT/traces-N.json;
  - an OpenAI-compatible chat-completions server: POST /v1/chat/completions records the request's
    `traceparent` header (one line per request in OUT/traceparents.txt) and answers: with a call of the
    `calc` tool when the conversation has no tool result yet, with text otherwise; `usage` says 11 prompt
    tokens and 7 completion tokens.
Writes "OTLP_PORT CHAT_PORT" to OUT/ports once both listen; exits when OUT/stop appears or after 120 s.
Usage: otlp_receiver.py OUT
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out = sys.argv[1]
lock = threading.Lock()
count = [0]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/v1/traces":
            try:
                json.loads(body)
            except ValueError:
                return self.reply(400, {"error": "not JSON"})
            with lock:
                count[0] += 1
                # Written whole, then renamed: a test that polls for exports (serve's run in the background)
                # never reads a file half written.
                path = os.path.join(out, "traces-%d.json" % count[0])
                with open(path + ".tmp", "wb") as f:
                    f.write(body)
                os.replace(path + ".tmp", path)
            return self.reply(200, {})
        if self.path == "/v1/chat/completions":
            request = json.loads(body)
            with lock:
                with open(os.path.join(out, "traceparents.txt"), "a") as f:
                    f.write(self.headers.get("traceparent", "-") + "\n")
            usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
            if not any(m.get("role") == "tool" for m in request.get("messages", [])):
                message = {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "calc", "arguments": json.dumps({"expression": "6*7"})}}]}
            else:
                message = {"role": "assistant", "content": "the answer is 42"}
            return self.reply(200, {"id": "x", "object": "chat.completion", "model": request.get("model", "?"),
                                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                    "usage": usage})
        self.reply(404, {"error": "no such path"})


servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
with open(os.path.join(out, "ports.tmp"), "w") as f:
    f.write("%d %d\n" % (servers[0].server_address[1], servers[1].server_address[1]))
os.rename(os.path.join(out, "ports.tmp"), os.path.join(out, "ports"))
deadline = time.time() + 120
while time.time() < deadline and not os.path.exists(os.path.join(out, "stop")):
    time.sleep(0.05)
for s in servers:
    s.shutdown()
