// tests/runtime/runs_test.cpp: kinds that handle runs of values (node::handles_runs, on_run): a run never
// holds more than a slice and the outputs' room, a failure anywhere in a run rolls the whole run back and
// the fresh node handles it again exactly, a stateful run kind's checkpoint covers its whole run; and the
// built-ins that handle runs (flow.forward, sink.count, source.sequence, flow.jq) fan out and replicate exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>

#include "loom/runtime/json.hpp"
#include "loom/runtime/local/batch_pool.hpp"
#include "tests/support/graph_runner.hpp"

using namespace loom;
using outcome = local::run_report::outcome;

namespace {

struct run_log {
  std::atomic<std::size_t> runs{0};      // on_run calls
  std::atomic<std::size_t> longest{0};   // the longest run handed over
  std::atomic<int> throws{1};            // throw (once) in the run that holds `fail_on`
  std::int64_t fail_on = 500;
  void saw(std::size_t n) {
    runs.fetch_add(1);
    auto m = longest.load();
    while (n > m && !longest.compare_exchange_weak(m, n)) {
    }
  }
};

// Forwards runs; emits the run first, then throws when the run holds fail_on (the emitted run must not go
// out: the attempt rolls back).
class run_forward final : public node {
 public:
  explicit run_forward(std::shared_ptr<run_log> log) : log_(std::move(log)) {}
  void on_message(context& ctx, std::size_t, const value& v) override { ctx.emit(v); }
  bool handles_runs() const override { return true; }
  void on_run(context& ctx, std::size_t, std::span<const value> values) override {
    log_->saw(values.size());
    ctx.emit_run(0, values);
    bool holds = std::any_of(values.begin(), values.end(), [&](const value& v) { return v.as_int() == log_->fail_on; });
    if (holds && log_->throws.fetch_sub(1) > 0) throw std::runtime_error("run failed after emitting");
  }

 private:
  std::shared_ptr<run_log> log_;
};

// Sums its input (stateful: the sum is its checkpoint); throws once in the run that holds fail_on, after
// adding the run to its (then discarded) sum. Emits the sum at finish.
class run_sum final : public node {
 public:
  run_sum(const node_init& i, std::shared_ptr<run_log> log) : log_(std::move(log)) {
    if (i.restored.is_int()) sum_ = i.restored.as_int();
  }
  bool handles_runs() const override { return true; }
  void on_run(context& ctx, std::size_t, std::span<const value> values) override {
    log_->saw(values.size());
    bool holds = false;
    for (const auto& v : values) {
      sum_ += v.as_int();
      holds = holds || v.as_int() == log_->fail_on;
    }
    if (holds && log_->throws.fetch_sub(1) > 0) throw std::runtime_error("sum failed mid-run");
    ctx.checkpoint(value(sum_));
  }
  void on_finish(context& ctx) override { ctx.emit(value(sum_)); }

 private:
  std::shared_ptr<run_log> log_;
  std::int64_t sum_ = 0;
};

struct fixture : test::graph_runner {
  std::shared_ptr<run_log> log = std::make_shared<run_log>();
  fixture() {
    kinds.add({{"test.run_forward", "Forwards runs; may throw.", {{"in", "v"}}, {{"out", "v"}}, {}, {}, {}},
               [l = log](const node_init&) { return std::make_unique<run_forward>(l); }});
    graph::kind_spec sum{"test.run_sum", "Sums runs; may throw.", {{"in", "v"}}, {{"out", "v"}}, {}, {}, {}};
    sum.stateful = true;
    kinds.add({sum, [l = log](const node_init& i) { return std::make_unique<run_sum>(i, l); }});
  }
};

std::uint64_t total(const local::run_report& r, const std::string& node, std::uint64_t local::node_stats::*field) {
  std::uint64_t n = 0;
  for (const auto& s : r.nodes)
    if (s.node == node) n += s.*field;
  return n;
}

// src (source.sequence of `count`) -> `kind` (restarts: 1) -> test.collect, with `defaults` if given.
std::string through(const std::string& kind, int count, const std::string& defaults = "") {
  return "graph: t\n" + (defaults.empty() ? "" : "defaults: " + defaults + "\n") +
         "nodes:\n  src: {kind: source.sequence, params: {count: " + std::to_string(count) +
         "}}\n  mid: {kind: " + kind + ", restarts: 1}\n  out: {kind: test.collect}\nedges: [src -> mid, mid -> out]\n";
}

}  // namespace

TEST_CASE("a run kind gets runs no longer than a slice or its outputs' room; a failed run is handled again exactly" *
          doctest::timeout(60)) {
  fixture fx;
  auto r = fx.run_yaml(through("test.run_forward", 2000, "{capacity: 48}"));
  REQUIRE(r.result == outcome::ok);
  auto got = fx.sink->snapshot();
  REQUIRE(got.size() == 2000);
  for (std::int64_t i = 0; i < 2000; ++i) CHECK(got[static_cast<std::size_t>(i)].as_int() == i);
  CHECK(total(r, "mid", &local::node_stats::restarts) == 1);
  CHECK(total(r, "mid", &local::node_stats::in) == 2000);
  CHECK(total(r, "mid", &local::node_stats::out) == 2000);
  // Runs were used (more than one value per call), and none was longer than the out-edge's capacity.
  CHECK(fx.log->longest.load() > 1);
  CHECK(fx.log->longest.load() <= 48);
  CHECK(fx.log->runs.load() < 2000);
}

TEST_CASE("a run kind that keeps failing names the run's first value and its length" * doctest::timeout(60)) {
  fixture fx;
  fx.log->throws = 1000;
  auto r = fx.run_yaml(through("test.run_forward", 2000));
  REQUIRE(r.result == outcome::failed);
  INFO(r.error);
  CHECK(r.error.find("node `mid` (test.run_forward) failed on input `in` (edge src.out -> mid.in, value ") !=
        std::string::npos);
  CHECK(r.error.find(" after it, handled as one run) (after 1 restarts: 2 attempts): run failed after emitting") !=
        std::string::npos);
}

TEST_CASE("a stateful run kind's checkpoint covers its whole run: a restart neither loses nor repeats" *
          doctest::timeout(60)) {
  fixture fx;
  auto r = fx.run_yaml(through("test.run_sum", 1000));
  REQUIRE(r.result == outcome::ok);
  auto got = fx.sink->snapshot();
  REQUIRE(got.size() == 1);
  CHECK(got[0].as_int() == 999 * 1000 / 2);
  CHECK(total(r, "mid", &local::node_stats::restarts) == 1);
  CHECK(fx.log->longest.load() > 1);
}

TEST_CASE("forward, count and sequence handle runs across fan-out and replicas: every value once" *
          doctest::timeout(60)) {
  test::graph_runner fx;
  auto r = fx.run_yaml(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 5000}}
  fwd: {kind: flow.forward, replicas: 3}
  n1: {kind: sink.count, params: {expect: 5000}}
  two: {kind: flow.forward}
  n2: {kind: sink.count, replicas: 2}
  out: {kind: test.collect}
edges: [src -> fwd, fwd -> n1, fwd -> two, two -> n2, fwd -> out]
)");
  INFO(r.error);
  REQUIRE(r.result == outcome::ok);
  auto got = fx.sink->snapshot();
  REQUIRE(got.size() == 5000);
  std::vector<std::int64_t> sorted;
  for (const auto& v : got) sorted.push_back(v.as_int());
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 5000; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);
  CHECK(total(r, "fwd", &local::node_stats::out) == 3 * 5000);
  CHECK(total(r, "n2", &local::node_stats::in) == 5000);
}

TEST_CASE("flow.jq replicas run on two threads at once, each with its own jq_state: every output exact" *
          doctest::timeout(120)) {
  // libjq 1.6 keeps no mutable global state on these paths (numbers print and parse with a dtoa context
  // per call, regexes are compiled per match) once Oniguruma's global tables exist, which jq_program sets up
  // once before the first program (two threads meeting their first regex at once built them twice: a leak
  // under the asan preset, 1 run in ~10). No lock around runs, and this checks so under load.
  test::graph_runner fx(2);
  auto r = fx.run_yaml(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 100000}}
  jq:
    kind: flow.jq
    replicas: 2
    params:
      program: '{i: ., q: (. / 4 | tostring), seven: (tostring | test("7$")),
                 back: (tostring | @base64 | @base64d | tonumber), json: ({a: (. * 3)} | tojson | fromjson | .a)}'
  out: {kind: test.collect}
edges: [src -> jq -> out]
)");
  INFO(r.error);
  REQUIRE(r.result == outcome::ok);
  auto got = fx.sink->snapshot();
  REQUIRE(got.size() == 100000);
  std::vector<bool> seen(100000);
  int wrong = 0;
  for (const auto& v : got) {
    std::int64_t i = v.find("i")->as_int();
    REQUIRE((i >= 0 && i < 100000 && !seen[static_cast<std::size_t>(i)]));
    seen[static_cast<std::size_t>(i)] = true;
    bool ok = std::stod(v.find("q")->as_string()) == static_cast<double>(i) / 4 &&
              v.find("seven")->as_bool() == (i % 10 == 7) && v.find("back")->as_int() == i &&
              v.find("json")->as_int() == 3 * i;
    if (!ok && ++wrong <= 3) FAIL_CHECK("wrong output for " << i << ": " << to_json_line(v));
  }
  CHECK(wrong == 0);
  CHECK(total(r, "jq", &local::node_stats::in) == 100000);
}

TEST_CASE("the batch pool hands back consumed storage, keeps at most four of at most 4096 values") {
  local::batch_pool pool;
  value payload{std::string(64, 'p')};
  std::vector<value> consumed(32, payload);
  auto* storage = consumed.data();
  pool.give(std::move(consumed));
  auto again = pool.take(16);
  CHECK(again.empty());
  CHECK(again.data() == storage);  // the same storage, no new allocation
  CHECK(again.capacity() >= 32);
  // Five given, four kept: the fifth take allocates.
  for (int k = 0; k < 5; ++k) pool.give(std::vector<value>(8, payload));
  int reused = 0;
  for (int k = 0; k < 5; ++k) reused += pool.take(1).capacity() >= 8 ? 1 : 0;
  CHECK(reused == 4);
  // Storage past 4096 values is not kept: a wide edge's batches do not stay allocated in every node.
  std::vector<value> wide;
  wide.reserve(local::batch_pool::max_values + 1);
  wide.push_back(payload);
  pool.give(std::move(wide));
  CHECK(pool.take(1).capacity() < local::batch_pool::max_values);
}
