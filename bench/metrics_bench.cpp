// bench/metrics_bench.cpp: the cost of `--metrics`. The 4-stage pipeline (source -> forward -> forward ->
// sink, as in loom_bench) run with metrics off and on, interleaved in one process: on means what
// `loom run --metrics` does (a /metrics listener, the run's families refreshed from every progress report)
// plus a scraper that GETs /metrics every `--scrape-ms` during the run (far more often than Prometheus'
// usual 15 s). The hot path counts what it always counted; this measures that nothing else crept in.
// `build/bin/loom_metrics_bench` prints markdown (bench/RESULTS.md has the figures).
#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "loom/actors/builtins.hpp"
#include "bench/run_graph.hpp"
#include "loom/runtime/observe/metrics_server.hpp"
#include "loom/runtime/observe/run_metrics.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace loom;

struct result {
  double per_second = 0;
  std::uint64_t scrapes = 0;
};

result pipeline(caf::actor_system& sys, const registry& kinds, std::int64_t n, bool metrics, int scrape_ms) {
  auto g = bench::pipeline_graph(n);
  std::optional<observe::metrics_server> server;
  std::optional<observe::run_metrics> run;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> scrapes{0};
  std::jthread scraper;
  local::run_options ro;
  // A progress callback either way, so that the only difference is the metrics.
  ro.on_progress = [&](const local::run_report& r) {
    if (run) run->update(r);
  };
  ro.progress_every = std::chrono::milliseconds(100);
  if (metrics) {
    server.emplace("127.0.0.1:0");
    run.emplace("bench-pipeline", observe::new_run_id());
    scraper = std::jthread([&, port = server->port()] {
      httplib::Client c{"127.0.0.1", port};
      while (!done) {
        if (auto r = c.Get("/metrics"); r && r->status == 200) ++scrapes;
        std::this_thread::sleep_for(std::chrono::milliseconds(scrape_ms));
      }
    });
  }
  struct stop_scraper {  // also when the run throws: the scraper thread is joined below
    std::atomic<bool>& done;
    ~stop_scraper() { done = true; }
  } stop{done};
  auto t0 = clock_type::now();
  bench::run_ok(sys, kinds, std::move(g), ro);
  double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  done = true;
  return {static_cast<double>(n) / s, scrapes.load()};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loom_metrics_bench: the pipeline with --metrics off and on, same process"};
  std::int64_t messages = 2'000'000;
  int repeat = 7, scrape_ms = 50;
  unsigned threads = 2;
  app.add_option("--messages", messages, "Messages per run");
  app.add_option("--repeat", repeat, "Runs of each case (interleaved; the median is reported)");
  app.add_option("--threads", threads, "CAF scheduler threads");
  app.add_option("--scrape-ms", scrape_ms, "Gap between scrapes of /metrics while metrics are on");
  CLI11_PARSE(app, argc, argv);

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", static_cast<size_t>(threads));
  caf::actor_system sys{cfg};
  registry kinds;
  actors::register_builtins(kinds);

  std::vector<double> off, on, ratio;
  std::uint64_t scrapes = 0;
  for (int i = 0; i < repeat; ++i) {
    // Alternate which goes first, so that neither always runs on a warmer machine.
    auto first = i % 2 == 0;
    auto a = pipeline(sys, kinds, messages, !first, scrape_ms);
    auto b = pipeline(sys, kinds, messages, first, scrape_ms);
    auto& with = first ? b : a;
    auto& without = first ? a : b;
    off.push_back(without.per_second);
    on.push_back(with.per_second);
    ratio.push_back(with.per_second / without.per_second);
    scrapes += with.scrapes;
    fmt::print(stderr, "run {}: off {:.0f}/s, on {:.0f}/s ({} scrapes), ratio {:.3f}\n", i + 1, without.per_second,
               with.per_second, with.scrapes, ratio.back());
  }
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
  fmt::print(
      "## Metrics on vs off (`--metrics`), same process\n\n"
      "- command: `{}`; {} hardware threads, CAF scheduler threads: {}\n"
      "- 4-stage pipeline, {} int messages per run, {} interleaved pairs; on: /metrics served, the run's families "
      "refreshed from each progress report (every 100 ms, as in both cases), /metrics scraped every {} ms "
      "({} scrapes in all)\n\n"
      "| | messages/s (median) |\n|---|---:|\n| metrics off | {:.0f} |\n| metrics on | {:.0f} |\n\n"
      "Median of the per-pair ratios on/off: **{:.3f}** (target >= 0.97: **{}**).\n",
      cmd, std::thread::hardware_concurrency(), threads, messages, repeat, scrape_ms, scrapes, median(off), median(on),
      median(ratio), median(ratio) >= 0.97 ? "met" : "NOT met");
  return 0;
}
