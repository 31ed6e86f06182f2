#!/usr/bin/env python3
"""tests/support/replica_sim.py: a simulated OpenAI-compatible model replica for the router's tests and benches
(docs/route.md). Python 3 standard library only; nothing of it is used by the router.

It models what makes routing matter:
  - a KV prefix cache: the prompt's tokens (whitespace-separated words of the rendered messages) in blocks of
    --block-tokens, hashed in a chain, LRU, at most --cache-tokens tokens;
  - prefill time proportional to the uncached tokens (--prefill-ms per token), one prefill at a time;
  - decode time per token (--decode-ms, plus --decode-batch-ms for each other request decoding beside it),
    at most --max-batch requests at once (others queue); a prefill stalls every decode of its replica while
    it runs (as in an engine without chunked prefill);
  - faults on demand, from the command line or POST /control {"slow": F, "die_after_tokens": N,
    "fail_5xx": N}: every time multiplied by F; the process exits (os._exit) after sending N tokens of a
    stream, mid-answer; the next N completions answer 500.
Answers are deterministic: a function of the conversation (the messages before a trailing assistant
message), so a test can compare text. A trailing assistant message is a prefix of the answer already given
(the router continues a stream that way): the answer goes on after it.

GET /v1/models, /health, /stats (counters: requests, prompt, cached and completion tokens; requests
decoding now); POST /v1/chat/completions
(stream or not). Prints "listening on 127.0.0.1:PORT" once it accepts connections.
"""
import argparse
import collections
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu amber basil cedar dune ember fjord "
         "grove heath iris jade kelp loam moss nectar onyx pine quartz reed sage thyme umber vale willow yew "
         "zinc anchor beacon canyon delta2 estuary fathom glacier harbor inlet jetty knoll lagoon").split()


def answer_pieces(conversation, n):
    """The answer to a conversation: n tokens, each a word and (but the last) a space."""
    seed = hashlib.sha256(json.dumps(conversation, sort_keys=True).encode()).digest()
    out, h = [], seed
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out.extend(WORDS[b % len(WORDS)] for b in h[:8])
    out = out[:n]
    return [w + (" " if i + 1 < n else "") for i, w in enumerate(out)]


def content_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class Cache:
    """The KV prefix cache: chained block hashes, LRU, bounded in tokens."""

    def __init__(self, capacity_tokens, block_tokens):
        self.block = block_tokens
        self.capacity = max(1, capacity_tokens // block_tokens)
        self.blocks = collections.OrderedDict()
        self.lock = threading.Lock()

    def chain(self, tokens):
        out, h = [], b""
        for i in range(0, len(tokens) - self.block + 1, self.block):
            h = hashlib.blake2b(h + "\x00".join(tokens[i:i + self.block]).encode(), digest_size=16).digest()
            out.append(h)
        return out

    def lookup_and_insert(self, tokens):
        """The number of leading tokens cached; then the whole prompt is cached."""
        chain = self.chain(tokens)
        with self.lock:
            hit = 0
            for h in chain:
                if h not in self.blocks:
                    break
                hit += 1
            for h in chain:
                self.blocks[h] = True
                self.blocks.move_to_end(h)
            while len(self.blocks) > self.capacity:
                self.blocks.popitem(last=False)
        return hit * self.block


class Replica:
    def __init__(self, a):
        self.a = a
        self.cache = Cache(a.cache_tokens, a.block_tokens)
        self.batch = threading.Semaphore(a.max_batch)
        self.prefill = threading.Lock()
        self.lock = threading.Lock()
        self.decoding = 0  # requests decoding now
        self.slow = a.slow
        self.die_after = a.die_after_tokens
        self.fail_5xx = a.fail_5xx
        self.stats = {"requests": 0, "prompt_tokens": 0, "cached_tokens": 0, "completion_tokens": 0,
                      "failed_5xx": 0, "continued": 0}

    def count(self, **kw):
        with self.lock:
            for k, v in kw.items():
                self.stats[k] += v


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    replica = None

    def log_message(self, *args):
        pass

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        r = self.replica
        if self.path == "/health":
            return self.send_json(200, {"status": "ok"})
        if self.path == "/v1/models":
            return self.send_json(200, {"object": "list", "data": [{"id": r.a.model, "object": "model",
                                                                    "created": 0, "owned_by": "sim"}]})
        if self.path == "/stats":
            with r.lock:
                return self.send_json(200, dict(r.stats, decoding=r.decoding))
        self.send_json(404, {"error": {"message": "no route " + self.path}})

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_POST(self):
        r = self.replica
        try:
            body = self.read_body()
        except ValueError as e:
            return self.send_json(400, {"error": {"message": "not JSON: %s" % e}})
        if self.path == "/control":
            with r.lock:
                if "slow" in body:
                    r.slow = float(body["slow"])
                if "die_after_tokens" in body:
                    r.die_after = int(body["die_after_tokens"])
                if "fail_5xx" in body:
                    r.fail_5xx = int(body["fail_5xx"])
            return self.send_json(200, {"ok": True})
        if self.path != "/v1/chat/completions":
            return self.send_json(404, {"error": {"message": "no route " + self.path}})
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.send_json(400, {"error": {"message": "`messages` must be a non-empty array"}})
        with r.lock:
            fail = r.fail_5xx > 0
            if fail:
                r.fail_5xx -= 1
        if fail:
            r.count(failed_5xx=1)
            return self.send_json(500, {"error": {"message": "simulated failure", "type": "server_error"}})

        msgs = [(m.get("role", ""), content_text(m.get("content"))) for m in messages if isinstance(m, dict)]
        prefix = ""
        conversation = msgs
        if msgs and msgs[-1][0] == "assistant":
            prefix, conversation = msgs[-1][1], msgs[:-1]
        n = int(body.get("max_tokens") or r.a.answer_tokens)
        pieces = answer_pieces([list(m) for m in conversation], max(1, min(n, r.a.answer_tokens)))
        start = 0
        if prefix:
            acc = ""
            for i, p in enumerate(pieces):
                if acc == prefix:
                    start = i
                    break
                acc += p
            else:
                start = len(pieces) if acc == prefix else 0
            r.count(continued=1)
        tokens = " ".join("%s: %s" % m for m in msgs).split()
        stream = bool(body.get("stream"))
        created = int(time.time())
        cid = "chatcmpl-sim-%s" % hashlib.sha1(os.urandom(8)).hexdigest()[:12]

        with r.batch:  # the batch: at most max_batch requests prefill or decode at once
            with r.prefill:  # one prefill at a time
                cached = r.cache.lookup_and_insert(tokens)
                time.sleep((len(tokens) - cached) * r.a.prefill_ms / 1000.0 * r.slow)
            r.count(requests=1, prompt_tokens=len(tokens), cached_tokens=cached)
            out = pieces[start:]
            usage = {"prompt_tokens": len(tokens), "completion_tokens": len(out),
                     "total_tokens": len(tokens) + len(out), "prompt_tokens_details": {"cached_tokens": cached}}
            with r.lock:
                r.decoding += 1

            def decode_step():
                with r.prefill:  # a prefill running on this replica stalls its decodes
                    pass
                with r.lock:
                    others = r.decoding - 1
                time.sleep((r.a.decode_ms + others * r.a.decode_batch_ms) / 1000.0 * r.slow)

            try:
                return self.answer(r, stream, out, usage, cid, created, decode_step)
            finally:
                with r.lock:
                    r.decoding -= 1

    def answer(self, r, stream, out, usage, cid, created, decode_step):
        if not stream:
            for _ in range(max(0, len(out) - 1)):
                decode_step()
            r.count(completion_tokens=len(out))
            return self.send_json(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": r.a.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(out)},
                             "finish_reason": "stop"}],
                "usage": usage})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(delta, finish=None):
            chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": r.a.model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            self.wfile.write(("data: %s\n\n" % json.dumps(chunk)).encode())
            self.wfile.flush()

        try:
            event({"role": "assistant", "content": ""})
            for i, p in enumerate(out):
                if i > 0:
                    decode_step()
                with r.lock:
                    die = r.die_after >= 0 and i >= r.die_after
                if die:
                    sys.stderr.write("replica_sim: dying mid-stream after %d tokens (as asked)\n" % i)
                    sys.stderr.flush()
                    os._exit(3)
                event({"content": p})
                r.count(completion_tokens=1)
            event({}, "stop")
            self.wfile.write(("data: %s\n\n" % json.dumps({"id": cid, "object": "chat.completion.chunk",
                                                            "created": created, "model": r.a.model,
                                                            "choices": [], "usage": usage})).encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--model", default="sim")
    p.add_argument("--cache-tokens", type=int, default=32768)
    p.add_argument("--block-tokens", type=int, default=16)
    p.add_argument("--prefill-ms", type=float, default=0.05, help="per uncached prompt token")
    p.add_argument("--decode-ms", type=float, default=2.0, help="per answer token after the first")
    p.add_argument("--decode-batch-ms", type=float, default=0.0,
                   help="added to each token's decode time per other request decoding at once")
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--answer-tokens", type=int, default=24, help="answer length (max_tokens may shorten it)")
    p.add_argument("--slow", type=float, default=1.0, help="multiplies every time")
    p.add_argument("--die-after-tokens", type=int, default=-1, help="exit mid-stream after N tokens (-1: never)")
    p.add_argument("--fail-5xx", type=int, default=0, help="the next N completions answer 500")
    a = p.parse_args()
    Handler.replica = Replica(a)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
