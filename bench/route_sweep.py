#!/usr/bin/env python3
"""bench/route_sweep.py: `loom route` in front of 4 simulated replicas (tests/support/replica_sim.py), driven by an
agent-team trace at rising concurrency, once per policy (prefix, least-loaded, round-robin). Results in
bench/RESULTS.md; docs/route.md explains the router.

The trace: TEAMS teams, each with its own long system prompt (and tool list), AGENTS conversations per
team, TURNS turns per conversation: each turn sends the whole conversation so far (system prompt, earlier
turns and answers) plus a new user message, streamed. CONCURRENCY conversations run at once (each one's
turns in order), for each level of the sweep. Every (policy, concurrency) run starts fresh replicas and a
fresh router (cold caches).

Measured per run, at the client: time to first token (TTFT: mean, p50, p95, p99), tokens per second per
user (answer tokens after the first over the time from first to last token, summed over all answers), throughput per
replica (answer tokens per second of the run's wall time, divided by the replicas), and the share of the
prompt tokens the replicas found cached (from their /stats).

Usage: bench/route_sweep.py --loom build/bin/loom [--levels 4,8,16,32] [--repeat N] [--json F] [--chart F.png]
The chart needs matplotlib (Debian: python3-matplotlib); without it only the table is printed.
"""
import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "..", "tests", "support", "replica_sim.py")


def start(argv, port_of):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError("%s printed no port" % argv[:3])
    return p, port_of(line.strip())


def words(rng, n):
    vocab = ("plan tool search fetch read write summarize verify check compare rank table graph node edge queue "
             "batch token cache prefix replica route score load latency budget agent team task goal step").split()
    return " ".join(rng.choice(vocab) for _ in range(n))


def make_trace(teams, agents, turns, system_words, user_words, seed=7):
    rng = random.Random(seed)
    systems = ["You are agent team %d. %s" % (t, words(rng, system_words)) for t in range(teams)]
    tools = [[{"type": "function", "function": {"name": "tool_%d_%d" % (t, k), "description": words(rng, 30),
                                                "parameters": {"type": "object", "properties": {}}}}
              for k in range(4)] for t in range(teams)]
    convs = []
    for t in range(teams):
        for a in range(agents):
            convs.append({"team": t, "system": systems[t], "tools": tools[t],
                          "users": ["agent %d turn %d: %s" % (a, k, words(rng, user_words)) for k in range(turns)]})
    rng.shuffle(convs)
    return convs


def stream_once(port, body):
    """One streamed request: (ttft, seconds from first to last token, answer text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.monotonic()
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError("HTTP %d: %s" % (r.status, r.read()[:200]))
    first = last = None
    text, tokens = "", 0
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        j = json.loads(line[6:])
        if not j.get("choices"):
            continue
        piece = j["choices"][0].get("delta", {}).get("content") or ""
        if piece:
            now = time.monotonic()
            first = first or now
            last = now
            text += piece
            tokens += 1
    c.close()
    if first is None:
        raise RuntimeError("no tokens")
    return first - t0, last - first, tokens, text


def run(loom, policy, concurrency, trace, sim_args, replicas):
    sims = [start([sys.executable, SIM, "--port", "0"] + sim_args, lambda l: int(l.rsplit(":", 1)[1]))
            for _ in range(replicas)]
    argv = [loom, "route", "--port", "0", "--policy", policy, "--max-in-flight", "64"]
    for _, port in sims:
        argv += ["--backend", "http://127.0.0.1:%d/v1" % port]
    router, rport = start(argv, int)
    queue = list(trace)
    lock = threading.Lock()
    ttfts, rates, errors = [], [], []
    total_tokens = [0]

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                conv = queue.pop()
            messages = [{"role": "system", "content": conv["system"]}]
            for user in conv["users"]:
                messages.append({"role": "user", "content": user})
                try:
                    ttft, decode, n, text = stream_once(rport, {"model": "sim", "stream": True, "messages": messages,
                                                                "tools": conv["tools"]})
                except Exception as e:  # noqa: BLE001 (a bench reports, it does not stop)
                    with lock:
                        errors.append(str(e))
                    break
                messages.append({"role": "assistant", "content": text})
                with lock:
                    ttfts.append(ttft)
                    total_tokens[0] += n
                    if n > 1:
                        rates.append((n - 1, decode))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    prompt = cached = 0
    per_replica = []
    for _, port in sims:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/stats")
        s = json.loads(c.getresponse().read())
        prompt += s["prompt_tokens"]
        cached += s["cached_tokens"]
        per_replica.append(s["requests"])
    for p, _ in sims + [(router, 0)]:
        p.terminate()
        p.wait()
    return {"ttfts": ttfts, "rates": rates, "tokens": total_tokens[0], "wall": wall, "errors": len(errors),
            "prompt": prompt, "cached": cached, "per_replica": per_replica}


def summarize(policy, concurrency, runs, replicas):
    """Pools the runs of one (policy, concurrency): TTFT percentiles over every request of every run."""
    ttfts = [t for r in runs for t in r["ttfts"]]
    # tokens after the first over the time they took, summed over every answer (a ratio of sums: one answer
    # whose tokens arrived in one read would weigh infinitely in a mean of ratios)
    decoded = sum(n for r in runs for n, _ in r["rates"])
    decode_s = sum(d for r in runs for _, d in r["rates"])
    q = statistics.quantiles(ttfts, n=100) if len(ttfts) > 1 else [ttfts[0]] * 99
    prompt = sum(r["prompt"] for r in runs)
    return {"policy": policy, "concurrency": concurrency, "runs": len(runs), "requests": len(ttfts),
            "errors": sum(r["errors"] for r in runs),
            "ttft_mean": statistics.mean(ttfts), "ttft_p50": q[49], "ttft_p95": q[94], "ttft_p99": q[98],
            "tokens_per_s_per_user": decoded / decode_s if decode_s > 0 else 0.0,
            "throughput_per_replica": statistics.mean(r["tokens"] / r["wall"] / replicas for r in runs),
            "cached_share": sum(r["cached"] for r in runs) / prompt if prompt else 0.0,
            "requests_per_replica": [r["per_replica"] for r in runs]}


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    for policy in sorted({r["policy"] for r in results}):
        rs = sorted((r for r in results if r["policy"] == policy), key=lambda r: r["concurrency"])
        ax[0].plot([r["tokens_per_s_per_user"] for r in rs], [r["throughput_per_replica"] for r in rs], "o-",
                   label=policy)
        for r in rs:
            ax[0].annotate(str(r["concurrency"]), (r["tokens_per_s_per_user"], r["throughput_per_replica"]),
                           fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax[1].plot([r["concurrency"] for r in rs], [r["ttft_mean"] * 1000 for r in rs], "o-", label=policy)
    ax[0].set_xlabel("tokens per second per user")
    ax[0].set_ylabel("tokens per second per replica")
    ax[0].set_title("Throughput against interactivity (labels: concurrency)")
    ax[1].set_xlabel("concurrent conversations")
    ax[1].set_ylabel("mean time to first token (ms)")
    ax[1].set_title("Mean TTFT")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description="loom route: policies against an agent-team trace on 4 simulated replicas")
    p.add_argument("--loom", default=os.path.join(HERE, "..", "build", "bin", "loom"))
    p.add_argument("--levels", default="4,8,16,32")
    p.add_argument("--policies", default="prefix,least-loaded,round-robin")
    p.add_argument("--replicas", type=int, default=4)
    p.add_argument("--teams", type=int, default=8)
    p.add_argument("--agents", type=int, default=6)
    p.add_argument("--turns", type=int, default=4)
    p.add_argument("--system-words", type=int, default=1500)
    p.add_argument("--user-words", type=int, default=60)
    p.add_argument("--sim", default="--prefill-ms 0.2 --decode-ms 4 --decode-batch-ms 0.5 --max-batch 8 --cache-tokens 12000 "
                                    "--answer-tokens 24", help="replica_sim.py options")
    p.add_argument("--repeat", type=int, default=1, help="runs per (policy, concurrency), pooled")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--chart", help="draw the chart here (PNG; needs matplotlib)")
    a = p.parse_args()
    trace = make_trace(a.teams, a.agents, a.turns, a.system_words, a.user_words)
    results = []
    print("| policy | concurrency | requests | TTFT mean ms | p50 | p95 | p99 | tok/s/user | tok/s/replica | cached |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for level in [int(x) for x in a.levels.split(",")]:
        raw = {policy: [] for policy in a.policies.split(",")}
        for _ in range(a.repeat):  # the policies interleaved, so that a slow moment of the machine hits all
            for policy in raw:
                raw[policy].append(run(a.loom, policy, level, trace, a.sim.split(), a.replicas))
        for policy, runs in raw.items():
            r = summarize(policy, level, runs, a.replicas)
            results.append(r)
            print("| %s | %d | %d%s | %.0f | %.0f | %.0f | %.0f | %.1f | %.1f | %.0f%% |" % (
                policy, level, r["requests"], " (%d errors)" % r["errors"] if r["errors"] else "",
                r["ttft_mean"] * 1000, r["ttft_p50"] * 1000, r["ttft_p95"] * 1000, r["ttft_p99"] * 1000,
                r["tokens_per_s_per_user"], r["throughput_per_replica"], r["cached_share"] * 100), flush=True)
    for level in sorted({r["concurrency"] for r in results}):
        by = {r["policy"]: r for r in results if r["concurrency"] == level}
        if "prefix" in by and "round-robin" in by:
            print("concurrency %d: round-robin mean TTFT / prefix mean TTFT = %.2fx" % (
                level, by["round-robin"]["ttft_mean"] / by["prefix"]["ttft_mean"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.chart:
        try:
            chart(results, a.chart)
            print("chart:", a.chart)
        except ImportError:
            print("no matplotlib: no chart (Debian: apt-get install python3-matplotlib)")


if __name__ == "__main__":
    main()
