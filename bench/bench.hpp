// bench/bench.hpp: the benchmark cases and what they report. Each case runs loom and its raw baseline in
// the same process (or, for memory, the same script), so the figures compare as ratios on a noisy machine.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace loom::bench {

struct throughput {
  std::uint64_t messages = 0;
  double seconds = 0;
  double per_second() const { return seconds > 0 ? messages / seconds : 0; }
};

struct latency {
  double p50_us = 0, p99_us = 0, max_us = 0;  // per hop
  std::uint64_t samples = 0;
};

// A percentile summary of end-to-end latencies in ns, divided by `hops`.
latency summarize(std::vector<std::int64_t> end_to_end_ns, int hops);

// source -> forward -> forward -> sink, `n` int messages.
throughput loom_pipeline_throughput(caf::actor_system& sys, std::int64_t n);
throughput raw_caf_pipeline_throughput(caf::actor_system& sys, std::int64_t n);
// The same chain in raw CAF with std::vector<int64_t> batches of 64 per message: the honest ceiling.
throughput raw_caf_batched_pipeline_throughput(caf::actor_system& sys, std::int64_t n);
// The same chain in oneTBB's flow graph, batches of 64, on at most `threads` threads (bench/tbb_pipeline.cpp;
// built when libtbb-dev is found: LOOM_BENCH_TBB).
throughput tbb_batched_pipeline_throughput(std::int64_t n, unsigned threads);

// The same pipeline carrying timestamps, one message every `interval_us`: the unloaded hop latency.
latency loom_pipeline_latency(caf::actor_system& sys, std::int64_t n, int interval_us);
latency raw_caf_pipeline_latency(caf::actor_system& sys, std::int64_t n, int interval_us);

struct memory_point {
  std::int64_t messages = 0;
  long peak_rss_kib = 0;
  double seconds = 0;
  int status = 0;
};
// Runs `loom run configs/bounded_memory.yaml` with `messages` blobs of 4 KiB and reports its peak RSS.
memory_point blob_memory(const std::string& loom_binary, const std::string& config, std::int64_t messages);

}  // namespace loom::bench
