// tests/runtime/semantics_test.cpp: the executor's promises under load and faults (docs/design.md,
// "Delivery, restarts, cancel"): a slow replica does not stall its siblings; every way an actor can die
// ends the run with a report; a restart discards what the failed attempt emitted and every built-in keeps
// its state across it; a tool holds at most max_pending calls.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <unistd.h>

#include <map>

#include "loom/graph/builder.hpp"
#include "loom/runtime/local/executor.hpp"
#include "tests/runtime/test_kinds.hpp"

using namespace loom;
using namespace std::chrono_literals;
using outcome = local::run_report::outcome;

namespace {

// A gate the test opens: a node waits on it (with a deadline, so no test can hang).
struct gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  void release() {
    std::lock_guard lock(m);
    open = true;
    cv.notify_all();
  }
  void wait() {
    std::unique_lock lock(m);
    cv.wait_for(lock, 20s, [&] { return open; });
  }
};

// Forwards; instance 0 waits at the gate on its first value (a replica stuck on a long model call).
class stuck_first final : public node {
 public:
  stuck_first(const node_init& i, std::shared_ptr<gate> g) : instance_(i.instance), gate_(std::move(g)) {}
  void on_message(context& ctx, std::size_t, const value& v) override {
    if (instance_ == 0 && first_) gate_->wait();
    first_ = false;
    ctx.emit(v);
  }

 private:
  int instance_;
  bool first_ = true;
  std::shared_ptr<gate> gate_;
};

// What the fault tests throw and where.
struct faults {
  std::atomic<int> finish_throws{0};    // on_finish throws a non-std exception this many times
  std::atomic<int> factory_throws{0};   // the factory throws this many times for attempts > 0
  std::atomic<bool> emit_then_throw{false};
};

// Emits v, then throws on value 3 the first time (when asked): the emitted value must not go out.
class emitter final : public node {
 public:
  explicit emitter(std::shared_ptr<faults> f) : f_(std::move(f)) {}
  void on_message(context& ctx, std::size_t, const value& v) override {
    ctx.emit(v);
    ctx.emit(value{v.as_int() + 1000});
    if (v.as_int() == 3 && f_->emit_then_throw.exchange(false)) throw std::runtime_error("after emitting");
  }
  void on_finish(context&) override {
    if (f_->finish_throws.fetch_sub(1) > 0) throw 42;  // not a std::exception
  }

 private:
  std::shared_ptr<faults> f_;
};

// A tool that throws something that is not a std::exception.
class bad_tool final : public node {
 public:
  value on_call(context&, const value&) override { throw 7; }
};

// Calls its tool once from on_finish and emits the reply (or the error).
class finish_caller final : public node {
 public:
  void on_finish(context& ctx) override {
    ctx.call(ctx.tools()[0], value{value_map{}}, 2s, [](context& c, call_result r) {
      c.emit(r.ok ? r.reply : value{"error: " + r.error});
    });
  }
};

class answer_tool final : public node {
 public:
  value on_call(context&, const value&) override { return value{"answered"}; }
};

// Two inputs; emits how many of its ports it saw close, at finish.
class closes final : public node {
 public:
  void on_input_closed(context&, std::size_t) override { ++closed_; }
  void on_finish(context& ctx) override { ctx.emit(value{static_cast<std::int64_t>(closed_)}); }

 private:
  int closed_ = 0;
};

// A slow tool (sleeps per call) and a caller that gives up sooner.
class slow_tool final : public node {
 public:
  explicit slow_tool(std::atomic<int>& ran) : ran_(ran) {}
  value on_call(context&, const value&) override {
    ran_.fetch_add(1);
    std::this_thread::sleep_for(60ms);
    return value{"late"};
  }

 private:
  std::atomic<int>& ran_;
};

class impatient final : public node {
 public:
  void on_message(context& ctx, std::size_t, const value& v) override {
    ctx.call(ctx.tools()[0], value{value_map{}}, 10ms, [](context& c, call_result r) {
      c.emit(value{r.ok ? std::string("ok") : r.error});
    });
  }
};

// A source that emits `count` ints, then stays open (its run with it) until the sink has them all, or at
// most 20 s (then `timed_out`).
class held_open final : public node {
 public:
  held_open(const node_init& i, std::shared_ptr<test::collected> sink, std::atomic<bool>& timed_out)
      : n_(i.params.get_int("count")), sink_(std::move(sink)), timed_out_(timed_out) {}
  bool on_pull(context& ctx) override {
    for (auto b = ctx.budget(); b > 0 && next_ < n_; --b) ctx.emit(value{next_++});
    if (next_ < n_) return true;
    if (ctx.stopping() || sink_->snapshot().size() >= static_cast<std::size_t>(n_)) return false;
    if (std::chrono::steady_clock::now() > deadline_) {
      timed_out_ = true;
      return false;
    }
    ctx.pause_for(2ms);
    return true;
  }

 private:
  std::int64_t n_, next_ = 0;
  std::shared_ptr<test::collected> sink_;
  std::atomic<bool>& timed_out_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::now() + 20s;
};

// Holds what arrives and sends it on from its timer, 1 ms after the value (context::wake_after); what it
// holds at finish is lost. Its first attempt's on_timer throws `timer_throws` times. Stateful: what it
// holds is its checkpoint, and a restarted one asks for its timer again.
class alarm final : public node {
 public:
  alarm(const node_init& i, std::atomic<int>& throws) : attempt_(i.attempt), throws_(throws) {
    if (i.restored.is_list()) held_ = i.restored.as_list();
  }
  void on_start(context& ctx) override {
    if (!held_.empty()) ctx.wake_after(1ms);
  }
  void on_message(context& ctx, std::size_t, const value& v) override {
    held_.push_back(v);
    ctx.checkpoint(value{held_});
    ctx.wake_after(1ms);
  }
  void on_timer(context& ctx) override {
    if (attempt_ == 0 && throws_.fetch_sub(1) > 0) throw std::runtime_error("the alarm broke");
    for (auto& v : held_) ctx.emit(v);
    held_.clear();
    ctx.checkpoint(value{value_list{}});
  }

 private:
  int attempt_;
  std::atomic<int>& throws_;
  value_list held_;
};

struct fixture : test::graph_runner {
  std::shared_ptr<gate> g = std::make_shared<gate>();
  std::atomic<bool> held_timed_out{false};
  std::atomic<int> timer_throws{0};
  std::shared_ptr<faults> f = std::make_shared<faults>();
  std::atomic<int> slow_ran{0};

  fixture() {
    using graph::param_spec;
    test::register_test_kinds(kinds, std::make_shared<std::atomic<int>>(1000));
    graph::kind_spec stuck{"test.stuck_first", "Forwards; replica 0 waits.", {{"in", "v"}}, {{"out", "v"}}, {}, {}, {}};
    stuck.blocking = true;
    kinds.add({stuck, [g = g](const node_init& i) { return std::make_unique<stuck_first>(i, g); }});
    kinds.add({{"test.emitter", "Emits twice, may throw.", {{"in", "v"}}, {{"out", "v"}}, {}, {}, {}},
               [f = f](const node_init& i) -> std::unique_ptr<node> {
                 if (i.attempt > 0 && f->factory_throws.fetch_sub(1) > 0) throw std::runtime_error("factory broke");
                 return std::make_unique<emitter>(f);
               }});
    graph::kind_spec bad{"test.bad_tool", "Throws 7.", {}, {}, {}, {}, {}};
    bad.call = graph::call_spec{"Fails.", {}};
    kinds.add({bad, [](const node_init&) { return std::make_unique<bad_tool>(); }});
    graph::kind_spec ans{"test.answer", "Answers.", {}, {}, {}, {}, {}};
    ans.call = graph::call_spec{"Answers.", {}};
    kinds.add({ans, [](const node_init&) { return std::make_unique<answer_tool>(); }});
    kinds.add({{"test.finish_caller", "Calls at finish.", {{"in", "v"}}, {{"out", "v"}}, {}, {}, {}},
               [](const node_init&) { return std::make_unique<finish_caller>(); }});
    kinds.add({{"test.closes", "Counts closes.", {{"a", "v"}, {"b", "v"}}, {{"out", "v"}}, {}, {}, {}},
               [](const node_init&) { return std::make_unique<closes>(); }});
    graph::kind_spec slow{"test.slow_tool", "Sleeps.", {}, {}, {}, {}, {}};
    slow.call = graph::call_spec{"Sleeps.", {}};
    slow.blocking = true;
    kinds.add({slow, [this](const node_init&) { return std::make_unique<slow_tool>(slow_ran); }});
    kinds.add({{"test.impatient", "Calls with a 10 ms timeout.", {{"in", "v"}}, {{"out", "v"}}, {}, {}, {}},
               [](const node_init&) { return std::make_unique<impatient>(); }});
    kinds.add({{"test.held_open", "Emits ints, open until the sink has them.", {}, {{"out", "ints"}},
                {param_spec::integer("count", "how many").def(5)}, {}, {}},
               [this](const node_init& i) { return std::make_unique<held_open>(i, sink, held_timed_out); }});
    graph::kind_spec al{"test.alarm", "Sends on from its timer.", {{"in", "v"}}, {{"out", "v"}}, {}, {}, {}};
    al.stateful = true;
    kinds.add({al, [this](const node_init& i) { return std::make_unique<alarm>(i, timer_throws); }});
    al.name = "test.alarm_blocking";  // the same on a thread of its own
    al.blocking = true;
    kinds.add({al, [this](const node_init& i) { return std::make_unique<alarm>(i, timer_throws); }});
  }

  graph::graph loaded(const std::string& yaml) {
    graph::diagnostics d;
    auto gr = graph::load_graph_text(yaml, "test.yaml", d);
    INFO(d.str());
    REQUIRE(gr.has_value());
    return *gr;
  }
};

std::uint64_t total(const local::run_report& r, const std::string& node, std::uint64_t local::node_stats::*field) {
  std::uint64_t n = 0;
  for (const auto& s : r.nodes)
    if (s.node == node) n += s.*field;
  return n;
}

std::vector<std::int64_t> ints(const std::vector<value>& vs) {
  std::vector<std::int64_t> out;
  for (const auto& v : vs) out.push_back(v.as_int());
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("a slow replica does not stall its siblings; the output is complete" * doctest::timeout(60)) {
  fixture fx;
  graph::builder b("replicas");
  b.node("src", "source.sequence").param("count", 400);
  b.node("work", "test.stuck_first").replicas(4);
  b.node("out", "test.collect");
  b.chain({"src", "work", "out"});
  b.default_capacity(4);
  auto run = std::async(std::launch::async, [&] { return fx.run(b.build()); });
  // While replica 0 is stuck on its first value, the other three take everything else: at most the
  // values queued on replica 0's link (its capacity) wait for it.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (fx.sink->snapshot().size() < 400 - 4 - 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  auto before_release = fx.sink->snapshot().size();
  fx.g->release();
  auto r = run.get();
  CHECK(before_release >= 400 - 4 - 1);
  REQUIRE(r.result == outcome::ok);
  auto got = ints(fx.sink->snapshot());
  REQUIRE(got.size() == 400);
  for (std::int64_t i = 0; i < 400; ++i) CHECK(got[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("a producer waiting for credit shows on its edge: blocked now, and the time it waited" *
          doctest::timeout(60)) {
  fixture fx;
  graph::builder b("backpressure");
  b.node("src", "source.sequence").param("count", 100);
  b.node("work", "test.stuck_first");
  b.node("out", "test.collect");
  b.chain({"src", "work", "out"});
  b.default_capacity(4);
  std::mutex m;
  std::vector<local::run_report> seen;
  local::run_options o;
  o.progress_every = 20ms;
  o.on_progress = [&](const local::run_report& r) {
    std::lock_guard lock(m);
    seen.push_back(r);
  };
  auto run = std::async(std::launch::async, [&] { return fx.run(b.build(), o); });
  auto src_blocked = [](const local::run_report& r) {
    for (const auto& e : r.edges)
      if (e.from == "src") return e.blocked;
    return false;
  };
  auto deadline = std::chrono::steady_clock::now() + 20s;
  bool waiting = false;
  while (!waiting && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    std::lock_guard lock(m);
    waiting = !seen.empty() && src_blocked(seen.back());
  }
  std::this_thread::sleep_for(100ms);
  fx.g->release();
  auto r = run.get();
  REQUIRE(r.result == outcome::ok);
  CHECK(waiting);
  CHECK(fx.sink->snapshot().size() == 100);
  REQUIRE(r.edges.size() == 2);
  const auto& e = r.edges[0].from == "src" ? r.edges[0] : r.edges[1];
  CHECK(e.label == "src.out -> work.in");
  CHECK(e.to == "work");
  CHECK_FALSE(e.blocked);                 // the run ended: nobody waits
  CHECK(e.blocked_ns >= 100'000'000ull);  // it waited while the gate was shut (>= the 100 ms above)
  std::uint64_t queued = 0;
  for (const auto& n : r.nodes) queued += n.queued;
  CHECK(queued == 0);
}

TEST_CASE("supervision: every way a node can fail ends the run" * doctest::timeout(60)) {
  fixture fx;
  SUBCASE("a tool that throws a non-std exception answers with an error") {
    auto r = fx.run(fx.loaded(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 3}}
  ask: {kind: test.finish_caller, tools: [bad]}
  bad: {kind: test.bad_tool}
  out: {kind: test.collect}
edges: [src -> ask, ask -> out]
)"));
    REQUIRE(r.result == outcome::ok);
    auto got = fx.sink->snapshot();
    REQUIRE(got.size() == 1);
    CHECK(got[0].as_string().find("not a std::exception") != std::string::npos);
  }
  SUBCASE("a call made from on_finish is answered before the node ends") {
    auto r = fx.run(fx.loaded(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 3}}
  ask: {kind: test.finish_caller, tools: [tool]}
  tool: {kind: test.answer}
  out: {kind: test.collect}
edges: [src -> ask, ask -> out]
)"));
    REQUIRE(r.result == outcome::ok);
    auto got = fx.sink->snapshot();
    REQUIRE(got.size() == 1);
    CHECK(got[0].as_string() == "answered");
  }
  SUBCASE("on_finish throwing a non-std exception during a cancel fails the run, naming the node") {
    fx.f->finish_throws = 1;
    auto r = fx.run(fx.loaded(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 100000}}
  em: {kind: test.emitter}
  boom: {kind: test.flaky, params: {fail_on: 5}}
  out: {kind: test.collect}
edges: [src -> em, em -> boom, boom -> out]
)"));
    REQUIRE(r.result == outcome::failed);
    CHECK(r.error.find("boom") != std::string::npos);
  }
  SUBCASE("a factory that throws during a restart fails the run, naming the restart") {
    fx.f->emit_then_throw = true;
    fx.f->factory_throws = 5;
    auto g = fx.loaded(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 10}}
  em: {kind: test.emitter, restarts: 2}
  out: {kind: test.collect}
edges: [src -> em, em -> out]
)");
    auto r = fx.run(g);
    REQUIRE(r.result == outcome::failed);
    CHECK(r.error.find("node `em` (test.emitter) failed on input `in`") != std::string::npos);
    CHECK(r.error.find("factory broke") != std::string::npos);
    CHECK(r.error.find("3 attempts") != std::string::npos);
  }
  SUBCASE("an actor killed from outside fails the run, naming node and kind") {
    auto g = fx.loaded(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 1000000}}
  fwd: {kind: flow.forward}
  out: {kind: sink.count}
edges: [src -> fwd, fwd -> out]
)");
    graph::diagnostics d;
    graph::validate(g, fx.kinds, d);
    graph::apply_defaults(g, fx.kinds);
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    local::slice_hooks hooks;
    hooks.before_start = [](const std::vector<caf::actor>& all, const caf::actor&) {
      caf::anon_send_exit(all[1], caf::exit_reason::kill);
      return true;
    };
    auto r = local::run_slice(sys, std::make_shared<const local::deployment>(local::expand(g, fx.kinds)), {}, hooks);
    REQUIRE(r.result == outcome::failed);
    CHECK(r.error.find("node `fwd` (flow.forward) stopped without reporting") != std::string::npos);
  }
}

TEST_CASE("restarts are exact: a failed attempt's emissions are discarded, closed ports stay closed" *
          doctest::timeout(60)) {
  fixture fx;
  SUBCASE("emitted before the throw, never sent") {
    fx.f->emit_then_throw = true;
    auto r = fx.run(fx.loaded(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 10}}
  em: {kind: test.emitter, restarts: 1}
  out: {kind: test.collect}
edges: [src -> em, em -> out]
)"));
    REQUIRE(r.result == outcome::ok);
    auto got = ints(fx.sink->snapshot());
    REQUIRE(got.size() == 20);  // each value and value+1000 exactly once
    for (std::int64_t i = 0; i < 10; ++i) {
      CHECK(got[static_cast<std::size_t>(i)] == i);
      CHECK(got[static_cast<std::size_t>(10 + i)] == 1000 + i);
    }
    CHECK(total(r, "em", &local::node_stats::restarts) == 1);
    CHECK(total(r, "em", &local::node_stats::in) == 10);
    CHECK(total(r, "em", &local::node_stats::out) == total(r, "out", &local::node_stats::in));
  }
  SUBCASE("a fresh node sees the ports that closed before it") {
    auto g = fx.loaded(R"(graph: t
nodes:
  a: {kind: source.sequence, params: {count: 1}}
  b: {kind: source.sequence, params: {count: 1}}
  c: {kind: test.closes, restarts: 1}
  out: {kind: test.collect}
edges: [a -> c.a, b -> c.b, c -> out]
)");
    local::run_options o;
    std::atomic<int> once{1};
    auto c = 2u;  // a, b, c: c is instance 2
    o.inject = [&](std::uint32_t i, local::fault_site s, int) {
      if (i == c && s == local::fault_site::finish && once.fetch_sub(1) > 0) throw std::runtime_error("injected");
    };
    auto r = fx.run(g, o);
    REQUIRE(r.result == outcome::ok);
    auto got = fx.sink->snapshot();
    REQUIRE(got.size() == 1);
    CHECK(got[0].as_int() == 2);
  }
}

TEST_CASE("a node's timer runs while its inputs stay open; a throw there restarts it, the fresh one goes on" *
          doctest::timeout(60)) {
  fixture fx;
  std::string kind = "test.alarm";
  int throws = 0;
  SUBCASE("the values come out from the timer, before the source ends") {}
  SUBCASE("on_timer throws once: restarted, every value once") { throws = 1; }
  SUBCASE("a blocking kind (its own thread) gets its timer too") { kind = "test.alarm_blocking"; }
  fx.timer_throws = throws;
  auto r = fx.run(fx.loaded(R"(graph: t
nodes:
  src: {kind: test.held_open, params: {count: 5}}
  al: {kind: )" + kind + R"(, restarts: 1}
  out: {kind: test.collect}
edges: [src -> al -> out]
)"));
  REQUIRE(r.result == outcome::ok);
  CHECK_FALSE(fx.held_timed_out);  // the source ended because the values had arrived
  auto got = fx.sink->snapshot();
  REQUIRE(got.size() == 5);
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i].as_int() == static_cast<std::int64_t>(i));
  CHECK(total(r, "al", &local::node_stats::restarts) == static_cast<std::uint64_t>(throws));
}

TEST_CASE("every stateful built-in keeps its promise across a restart" * doctest::timeout(60)) {
  fixture fx;
  auto dir = std::filesystem::temp_directory_path() / ("loom-restarts-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string in_path = (dir / "in.txt").string(), out_path = (dir / "out.jsonl").string();
  {
    std::ofstream in(in_path);
    for (int i = 0; i < 500; ++i) in << "line " << i << "\n";
  }
  // source.file -> flow.batch -> sink.file, with failures injected twice into each of them right after
  // its handler did its work (the source has read the lines; the sink has written the record).
  auto yaml = fmt::format(R"(graph: t
defaults: {{capacity: 4}}
nodes:
  src: {{kind: source.file, params: {{path: "{}"}}, restarts: 3}}
  batch: {{kind: flow.batch, params: {{size: 7}}, restarts: 3}}
  unbatch: {{kind: test.collect}}
  sink: {{kind: sink.file, params: {{path: "{}"}}, restarts: 3}}
edges: [src -> batch, batch -> sink, src -> unbatch]
)",
                          in_path, out_path);
  auto g = fx.loaded(yaml);
  std::mutex m;
  std::map<std::uint32_t, int> seen;
  local::run_options o;
  // Fail instance i's attempt number 3 (and later its 40th) once each: src pulls, batch messages, sink records.
  o.inject = [&](std::uint32_t i, local::fault_site s, int attempt) {
    std::lock_guard lock(m);
    int n = ++seen[i];
    if (i != 2 && (n == 3 || n == 40) && (s == local::fault_site::pull || s == local::fault_site::message))
      throw std::runtime_error(fmt::format("injected into instance {} (attempt {})", i, attempt));
  };
  auto r = fx.run(g, o);
  INFO(r.error);
  REQUIRE(r.result == outcome::ok);
  CHECK(total(r, "src", &local::node_stats::restarts) == 2);
  CHECK(total(r, "batch", &local::node_stats::restarts) == 2);
  CHECK(total(r, "sink", &local::node_stats::restarts) == 2);
  // The source resumed where it was: every line once, in order.
  auto lines = fx.sink->snapshot();
  REQUIRE(lines.size() == 500);
  for (std::size_t i = 0; i < lines.size(); ++i) CHECK(lines[i].as_string() == fmt::format("line {}", i));
  // The batch kept what it held and the sink kept each record once.
  auto text = slurp(out_path);
  std::string expect;
  for (int i = 0; i < 500; i += 7) {
    expect += "[";
    for (int k = i; k < std::min(500, i + 7); ++k) expect += fmt::format("{}\"line {}\"", k == i ? "" : ",", k);
    expect += "]\n";
  }
  CHECK(text == expect);
  CHECK(total(r, "src", &local::node_stats::out) == total(r, "batch", &local::node_stats::in) +
                                                         total(r, "unbatch", &local::node_stats::in));
  CHECK(total(r, "batch", &local::node_stats::out) == total(r, "sink", &local::node_stats::in));
  std::filesystem::remove_all(dir);
}

TEST_CASE("sink.file writes each record once when it fails between its writes and right after one" *
          doctest::timeout(60)) {
  fixture fx;
  auto dir = std::filesystem::temp_directory_path() / ("loom-sink-restarts-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto out_path = (dir / "out.txt").string();
  // It writes every 1,024 records and checkpoints the length then; a restart cuts the file back to it and
  // is given the records since again. Failures: after records that are only buffered (1,500, 2,600) and
  // right after a write (1,024 and 4,096: the record that made the write).
  auto g = fx.loaded(fmt::format(R"(graph: t
nodes:
  src: {{kind: source.sequence, params: {{count: 5000}}}}
  sink: {{kind: sink.file, params: {{path: "{}", format: text}}, restarts: 4}}
edges: [src -> sink]
)",
                                 out_path));
  local::run_options o;
  std::atomic<int> n{0};
  o.inject = [&](std::uint32_t i, local::fault_site s, int) {
    if (i != 1 || s != local::fault_site::message) return;
    auto k = ++n;
    if (k == 1024 || k == 1500 + 1 || k == 2600 + 2 || k == 4096 + 3) throw std::runtime_error("injected");
  };
  auto r = fx.run(g, o);
  INFO(r.error);
  REQUIRE(r.result == outcome::ok);
  CHECK(total(r, "sink", &local::node_stats::restarts) == 4);
  CHECK(total(r, "sink", &local::node_stats::in) == 5000);
  std::string expect;
  for (int i = 0; i < 5000; ++i) expect += fmt::format("{}\n", i);
  CHECK(slurp(out_path) == expect);
  std::filesystem::remove_all(dir);
}

TEST_CASE("flow.gather keeps what it held across a restart" * doctest::timeout(60)) {
  fixture fx;
  auto g = fx.loaded(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 50}}
  gather: {kind: flow.gather, params: {count: 1000}, restarts: 1}
  out: {kind: test.collect}
edges: [src -> gather, gather -> out]
)");
  local::run_options o;
  std::atomic<int> n{0};
  o.inject = [&](std::uint32_t i, local::fault_site s, int) {
    if (i == 1 && s == local::fault_site::message && ++n == 30) throw std::runtime_error("injected");
  };
  auto r = fx.run(g, o);
  REQUIRE(r.result == outcome::ok);
  auto got = fx.sink->snapshot();
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].as_list().size() == 50);
  for (std::size_t i = 0; i < 50; ++i) CHECK(got[0].as_list()[i].as_int() == static_cast<std::int64_t>(i));
}

TEST_CASE("a tool slower than its callers' timeout holds at most max_pending calls and the run ends" *
          doctest::timeout(60)) {
  fixture fx;
  auto r = fx.run(fx.loaded(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 40}}
  pace: {kind: flow.throttle, params: {rate: 100}}
  ask: {kind: test.impatient, replicas: 8, tools: [slow]}
  slow: {kind: test.slow_tool, params: {max_pending: 2}}
  out: {kind: test.collect}
edges: [src -> pace, pace -> ask, ask -> out]
)"));
  REQUIRE(r.result == outcome::ok);
  auto got = fx.sink->snapshot();
  REQUIRE(got.size() == 40);  // every task got an answer: a reply, busy, or a timeout
  CHECK(total(r, "slow", &local::node_stats::queue_hwm) <= 2);
  // Calls that timed out before they started never ran; replies after a timeout were dropped and counted.
  CHECK(fx.slow_ran.load() < 40);
  CHECK(total(r, "slow", &local::node_stats::rejected) + static_cast<std::uint64_t>(fx.slow_ran.load()) >= 40);
  INFO("ran ", fx.slow_ran.load(), ", refused or cancelled ", total(r, "slow", &local::node_stats::rejected));
  CHECK(total(r, "ask", &local::node_stats::late) > 0);
}
