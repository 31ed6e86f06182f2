// bench/main.cpp: runs every benchmark, loom and its baseline interleaved in one process, and prints (or
// writes with --out) a markdown report with the date, the machine and the command.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <thread>

#include "bench/bench.hpp"

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace loom::bench;
  CLI::App app{"loom benchmarks: pipeline throughput and hop latency against raw CAF; memory under backpressure"};
  std::int64_t messages = 2'000'000, samples = 5000;
  int interval_us = 200, repeat = 5;
  unsigned threads = 2;
  std::string out, loom_binary = std::string(LOOM_BINARY_DIR) + "/bin/loom", config = "configs/bounded_memory.yaml";
  app.add_option("--messages", messages, "Messages per throughput run");
  app.add_option("--samples", samples, "Messages per latency run");
  app.add_option("--interval-us", interval_us, "Gap between latency messages (unloaded pipeline)");
  app.add_option("--repeat", repeat, "Runs of each case (the median is reported)");
  app.add_option("--threads", threads, "CAF scheduler threads");
  app.add_option("--out", out, "Write the markdown report here");
  app.add_option("--loom", loom_binary, "The loom binary for the memory case");
  app.add_option("--config", config, "The graph for the memory case");
  CLI11_PARSE(app, argc, argv);

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", static_cast<size_t>(threads));
  caf::actor_system sys{cfg};

  std::vector<double> loom_rate, raw_rate, batched_rate, tbb_rate;
  std::vector<latency> loom_lat, raw_lat;
  for (int i = 0; i < repeat; ++i) {  // interleaved, so both see the same machine
    raw_rate.push_back(raw_caf_pipeline_throughput(sys, messages).per_second());
    batched_rate.push_back(raw_caf_batched_pipeline_throughput(sys, messages).per_second());
#ifdef LOOM_BENCH_TBB
    tbb_rate.push_back(tbb_batched_pipeline_throughput(messages, threads).per_second());
#endif
    loom_rate.push_back(loom_pipeline_throughput(sys, messages).per_second());
    fmt::print(stderr, "throughput run {}: raw CAF {:.0f}/s, batched raw CAF {:.0f}/s, oneTBB {:.0f}/s, loom {:.0f}/s\n",
               i + 1, raw_rate.back(), batched_rate.back(), tbb_rate.empty() ? 0.0 : tbb_rate.back(), loom_rate.back());
  }
  for (int i = 0; i < std::max(1, repeat / 2); ++i) {
    raw_lat.push_back(raw_caf_pipeline_latency(sys, samples, interval_us));
    loom_lat.push_back(loom_pipeline_latency(sys, samples, interval_us));
    fmt::print(stderr, "latency run {}: raw CAF p99 {:.1f}us, loom p99 {:.1f}us\n", i + 1, raw_lat.back().p99_us,
               loom_lat.back().p99_us);
  }
  auto med = [](const std::vector<latency>& v, double latency::*f) {
    std::vector<double> x;
    for (const auto& l : v) x.push_back(l.*f);
    return median(x);
  };
  auto small = blob_memory(loom_binary, config, 4000);
  auto large = blob_memory(loom_binary, config, 40000);

  double lr = median(loom_rate), rr = median(raw_rate), br = median(batched_rate);
  // Each run's loom and batched raw CAF ran back to back: the median of those pairs' ratios is steadier on
  // a shared machine than the ratio of two medians.
  std::vector<double> paired;
  for (std::size_t i = 0; i < loom_rate.size(); ++i) paired.push_back(loom_rate[i] / batched_rate[i]);
  double pr = median(paired);
  std::string tbb_rows = "| oneTBB flow graph: not built (no libtbb-dev) | | | |\n";
  std::string tbb_line;
  if (!tbb_rate.empty()) {
    std::vector<double> paired_tbb;
    for (std::size_t i = 0; i < loom_rate.size(); ++i) paired_tbb.push_back(loom_rate[i] / tbb_rate[i]);
    double tr = median(tbb_rate), pt = median(paired_tbb);
    tbb_rows = fmt::format("| oneTBB flow graph, batches of 64, serial stages, at most {} threads | {:.0f} | {:.2f} | {:.2f} |\n",
                           threads, tr, tr / rr, tr / br);
    tbb_line = fmt::format("loom / oneTBB flow graph, median of the per-run ratios: **{:.2f}** (target >= 1.0, issue 26: "
                           "**{}**).\n\n", pt, pt >= 1.0 ? "met" : "NOT met");
  }
  char date[64];
  auto t = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);

  auto report = fmt::format(
      "# loom benchmark results\n\n"
      "- date: {}\n- machine: {}, {} hardware threads; CAF scheduler threads: {}\n- command: `{}`\n\n"
      "## 4-stage pipeline (source -> forward -> forward -> sink), in one process\n\n"
      "Throughput: {} int messages, median of {} interleaved runs.\n\n"
      "| | messages/s | vs raw CAF | vs batched raw CAF |\n|---|---:|---:|---:|\n"
      "| raw CAF (one CAF message per value, no flow control) | {:.0f} | 1.00 | {:.2f} |\n"
      "| raw CAF, `std::vector<int64_t>` batches of 64 per message, no flow control | {:.0f} | {:.2f} | 1.00 |\n"
      "{}"
      "| loom (credits per edge, batched hops) | {:.0f} | {:.2f} | {:.2f} |\n\n"
      "loom / batched raw CAF, median of the {} per-run ratios (each pair ran back to back): **{:.2f}**.\n\n"
      "{}"
      "Targets: loom >= 0.80 x raw CAF: **{}**; loom >= 0.80 x batched raw CAF (paired, issue 26): **{}**.\n\n"
      "Hop latency, unloaded (one message every {} us, {} messages; end-to-end / 3 hops), median of runs:\n\n"
      "| | p50 us/hop | p99 us/hop | max us/hop |\n|---|---:|---:|---:|\n"
      "| raw CAF | {:.1f} | {:.1f} | {:.1f} |\n| loom | {:.1f} | {:.1f} | {:.1f} |\n\n"
      "Targets: loom p99 hop < 20 us: **{}**; < 5 us (issue 12): **{}** (raw CAF's own p99 here: {:.1f} us).\n\n"
      "## Memory under backpressure\n\n"
      "`loom run {}` (4 KiB blobs -> flow.throttle at 20000/s -> sink.count; edge capacities 16 and 16), "
      "peak resident memory of the whole `loom run` process (VmHWM):\n\n"
      "| messages | peak RSS | seconds | exit |\n|---:|---:|---:|---:|\n"
      "| {} | {} KiB | {:.2f} | {} |\n| {} | {} KiB | {:.2f} | {} |\n\n"
      "10x the messages moved peak RSS by {:+.1f}% ({} data bytes sent in the larger run): memory is bounded by "
      "the edge capacities, not by the message count.\n",
      date, cpu_model(), std::thread::hardware_concurrency(), threads, cmd, messages, repeat, rr, rr / br, br, br / rr,
      tbb_rows, lr, lr / rr, lr / br, paired.size(), pr, tbb_line, lr / rr >= 0.8 ? "met" : "NOT met",
      pr >= 0.8 ? "met" : "NOT met",
      interval_us, samples, med(raw_lat, &latency::p50_us),
      med(raw_lat, &latency::p99_us), med(raw_lat, &latency::max_us), med(loom_lat, &latency::p50_us),
      med(loom_lat, &latency::p99_us), med(loom_lat, &latency::max_us),
      med(loom_lat, &latency::p99_us) < 20 ? "met" : "NOT met", med(loom_lat, &latency::p99_us) < 5 ? "met" : "NOT met",
      med(raw_lat, &latency::p99_us), config, small.messages, small.peak_rss_kib,
      small.seconds, small.status, large.messages, large.peak_rss_kib, large.seconds, large.status,
      100.0 * (double(large.peak_rss_kib) - double(small.peak_rss_kib)) / double(small.peak_rss_kib),
      large.messages * 4096);
  fmt::print("{}", report);
  if (!out.empty()) std::ofstream(out) << report;
  return 0;
}
