// tests/runtime/lineage_test.cpp: what makes a movable instance (`recover: replace`) exact when it moves,
// seen from one host's slice with test actors standing in for the instances elsewhere:
// - it tags each output with its lineage (in-link, input index, output number), and picks among a
//   consumer's replicas by that tag;
// - its credits are effect acknowledgements: an input is credited only once its outputs have left;
// - a consumer drops what a replaced producer sends again (tags at or below the last it took), credits
//   those drops at once, and counts the old producer's queued values out of the link.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "tests/support/graph_runner.hpp"

using namespace loom;
using namespace std::chrono_literals;
using outcome = local::run_report::outcome;

namespace {

// What a test actor standing in for a remote instance was sent.
struct seen {
  std::mutex m;
  std::vector<local::batch_msg> batches;
  std::uint64_t credits = 0;
  std::vector<local::link_id> acks;  // replaced_ack_msg
  int eos = 0;
  template <class F>
  auto with(F f) {
    std::lock_guard lock(m);
    return f(*this);
  }
};

caf::behavior remote_instance(caf::event_based_actor*, std::shared_ptr<seen> s) {
  return {
      [s](local::batch_msg& b) { s->with([&](seen& x) { x.batches.push_back(std::move(b)); }); },
      [s](const local::credit_msg& c) { s->with([&](seen& x) { x.credits += c.credits; }); },
      [s](const local::eos_msg&) { s->with([](seen& x) { ++x.eos; }); },
      [s](const local::replaced_ack_msg& a) { s->with([&](seen& x) { x.acks.push_back(a.link); }); },
  };
}

template <class P>
bool eventually(P p, std::chrono::milliseconds limit = 5s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!p()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// One slice: `here` runs in this process, every other instance is a test actor (remote_instance).
struct slice {
  test::graph_runner r;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::vector<std::shared_ptr<seen>> remote;
  std::vector<caf::actor> all;
  caf::actor coordinator;
  std::mutex m;
  std::thread runner;
  local::run_report report;
  bool started = false;

  slice(const std::string& yaml, std::uint32_t here, const std::function<void(registry&)>& add_kinds = {}) {
    if (add_kinds) add_kinds(r.kinds);
    graph::diagnostics d;
    auto g = graph::load_graph_text(yaml, "t.yaml", d);
    REQUIRE(g);
    graph::validate(*g, r.kinds, d);
    INFO(d.str());
    REQUIRE_FALSE(d.has_errors());
    graph::apply_defaults(*g, r.kinds);
    auto plan = std::make_shared<const local::deployment>(local::expand(*g, r.kinds));
    sys = std::make_unique<caf::actor_system>(cfg);
    remote.resize(plan->instances.size());
    runner = std::thread([this, plan, here] {
      local::slice_hooks hooks;
      hooks.is_local = [here](std::uint32_t i) { return i == here; };
      hooks.stand_in = [this](std::uint32_t i, const std::vector<caf::actor>&) {
        remote[i] = std::make_shared<seen>();
        return sys->spawn(remote_instance, remote[i]);
      };
      hooks.before_start = [this](const std::vector<caf::actor>& a, const caf::actor& c) {
        std::lock_guard lock(m);
        all = a;
        coordinator = c;
        started = true;
        return true;
      };
      report = local::run_slice(*sys, plan, {}, hooks);
    });
    REQUIRE(eventually([&] {
      std::lock_guard lock(m);
      return started;
    }));
  }
  ~slice() {
    if (runner.joinable()) {
      caf::anon_send(coordinator, local::cancel_atom::value);
      runner.join();
    }
  }
  // Sends `msg` to instance `to` as instance `from` would (through its stand-in).
  template <class M>
  void send(std::uint32_t from, std::uint32_t to, M msg) {
    caf::send_as(all[from], all[to], std::move(msg));
  }
  local::run_report finish() {
    runner.join();
    return report;
  }
};

// src(0) -> fwd(1, movable) -> ...: the rest of the nodes and the edges in `rest`; capacity 4.
std::string after_fwd(const std::string& rest) {
  return "graph: t\ndefaults: {capacity: 4}\nnodes:\n  src: {kind: source.sequence}\n"
         "  fwd: {kind: flow.forward, recover: replace}\n" +
         rest;
}

local::batch_msg batch(local::link_id link, std::int64_t from, std::int64_t to, std::uint64_t first = local::no_index,
                       bool tagged = false) {
  local::batch_msg b{link, {}, first};
  for (auto v = from; v < to; ++v) {
    b.values.push_back(value{v});
    if (tagged) b.tags.push_back(local::lineage{0, 0, static_cast<std::uint64_t>(v)});
  }
  return b;
}

// Says it gives one output per input, and gives two.
class twice final : public node {
 public:
  bool handles_runs() const override { return true; }
  bool one_output_per_input() const override { return true; }
  void on_run(context& ctx, std::size_t, std::span<const value> values) override {
    for (const auto& v : values) {
      ctx.emit(0, v);
      ctx.emit(0, v);
    }
  }
};

void add_twice(registry& kinds) {
  graph::kind_spec k{"test.twice", "Breaks its promise.", {{"in", "values"}}, {{"out", "each twice"}}, {}, {}, {}};
  kinds.add({k, [](const node_init&) { return std::make_unique<twice>(); }});
}

}  // namespace

TEST_CASE("a movable one-output-per-input kind on a single link takes runs: each output tagged by its input" *
          doctest::timeout(30)) {
  // src(0) -> fwd(1, here) -> out(2): flow.forward gives one output per input; one link out.
  slice s(after_fwd("  out: {kind: test.collect}\nedges: [src -> fwd, fwd -> out]\n"), 1);
  auto& src = *s.remote[0];
  auto& out = *s.remote[2];
  s.send(0, 1, batch(0, 0, 4, 100));
  REQUIRE(eventually([&] { return out.with([](seen& x) { return x.batches.size(); }) >= 1; }));
  REQUIRE(eventually([&] { return src.with([](seen& x) { return x.credits; }) == 4; }));
  s.send(2, 1, local::credit_msg{0, 4});
  s.send(0, 1, batch(0, 4, 8, 104));
  REQUIRE(eventually([&] {
    return out.with([](seen& x) {
      std::size_t n = 0;
      for (const auto& b : x.batches) n += b.values.size();
      return n;
    }) == 8;
  }));
  std::uint64_t next = 100;
  out.with([&](seen& x) {
    for (const auto& b : x.batches) {
      REQUIRE(b.tags.size() == b.values.size());
      auto tags = b.tags.expand();
      for (std::size_t k = 0; k < tags.size(); ++k, ++next) {
        CHECK(tags[k].link == 0);
        CHECK(tags[k].nth == 0);
        CHECK(tags[k].index == next);
        CHECK(b.values[k].as_int() == static_cast<std::int64_t>(next) - 100);
      }
    }
  });
  CHECK(next == 108);
  s.send(2, 1, local::credit_msg{0, 4});  // out is full: fwd takes nothing, not even the end, until it has room
  s.send(0, 1, local::eos_msg{0});
  REQUIRE(eventually([&] { return out.with([](seen& x) { return x.eos; }) == 1; }));
  CHECK(s.finish().result == outcome::ok);
}

TEST_CASE("a movable kind that says one output per input and gives two fails its run, naming the counts" *
          doctest::timeout(30)) {
  slice s("graph: t\ndefaults: {capacity: 4}\nnodes:\n  src: {kind: source.sequence}\n"
          "  two: {kind: test.twice, recover: replace}\n  out: {kind: test.collect}\nedges: [src -> two, two -> out]\n",
          1, add_twice);
  s.send(0, 1, batch(0, 0, 4, 0));
  // Room for all eight and the end, so that a kind whose promise went unchecked would end its run ok.
  std::this_thread::sleep_for(200ms);
  s.send(2, 1, local::credit_msg{0, 4});
  s.send(0, 1, local::eos_msg{0});
  std::this_thread::sleep_for(200ms);
  s.send(2, 1, local::credit_msg{0, 4});
  auto r = s.finish();
  CHECK(r.result == outcome::failed);
  INFO(r.error);
  CHECK(r.error.find("its kind gives one output per input, but a run of 4 inputs gave 8 outputs") != std::string::npos);
}

TEST_CASE("a movable instance tags its outputs, picks replicas by tag, and credits only what has left" *
          doctest::timeout(30)) {
  // src(0) -> fwd(1, here) -> out(2), out(3): capacity 4 everywhere.
  slice s(after_fwd("  out: {kind: test.collect, replicas: 2}\nedges: [src -> fwd, fwd -> out]\n"), 1);
  auto& src = *s.remote[0];
  auto& out0 = *s.remote[2];
  auto& out1 = *s.remote[3];
  auto credits = [&] { return src.with([](seen& x) { return x.credits; }); };
  auto sent = [&](seen& o) {
    return o.with([](seen& x) {
      std::size_t n = 0;
      for (const auto& b : x.batches) n += b.values.size();
      return n;
    });
  };
  // Values 100..107 of the link (as a stand-in numbers them): input k goes to replica (k + 0) % 2.
  s.send(0, 1, batch(0, 0, 4, 100));
  s.send(0, 1, batch(0, 4, 8, 104));
  REQUIRE(eventually([&] { return sent(out0) == 4 && sent(out1) == 4; }));
  REQUIRE(eventually([&] { return credits() == 8; }));
  for (auto* o : {&out0, &out1})
    o->with([&](seen& x) {
      for (const auto& b : x.batches) {
        REQUIRE(b.tags.size() == b.values.size());
        auto tags = b.tags.expand();
        for (std::size_t k = 0; k < tags.size(); ++k) {
          CHECK(tags[k].link == 0);
          CHECK(tags[k].nth == 0);
          CHECK(b.values[k].as_int() == static_cast<std::int64_t>(tags[k].index) - 100);
          CHECK(tags[k].index % 2 == (o == &out0 ? 0u : 1u));
        }
      }
    });
  // Both replicas are full. out1 gives room; inputs 108..111 are handled (the edge has room), but 108 and
  // 110 belong on out0, which has none: they wait in fwd's outbox, and so do the credits of all four.
  s.send(3, 1, local::credit_msg{1, 4});
  s.send(0, 1, batch(0, 8, 12, 108));
  REQUIRE(eventually([&] { return sent(out1) == 6; }));
  std::this_thread::sleep_for(200ms);
  CHECK(sent(out0) == 4);
  CHECK(credits() == 8);  // not credited: outputs of these inputs have not left
  s.send(2, 1, local::credit_msg{0, 4});
  REQUIRE(eventually([&] { return sent(out0) == 6; }));
  REQUIRE(eventually([&] { return credits() == 12; }));
  s.send(0, 1, local::eos_msg{0});
  REQUIRE(eventually([&] { return out0.with([](seen& x) { return x.eos; }) == 1 && out1.with([](seen& x) { return x.eos; }) == 1; }));
  CHECK(s.finish().result == outcome::ok);
}

TEST_CASE("a consumer drops what a replaced producer sends again and counts its old values out of the link" *
          doctest::timeout(30)) {
  // src(0) -> fwd(1, movable) -> mid(2, here) -> sink(3). mid can pass on only 2 values until sink credits.
  slice s(after_fwd(R"(  mid: {kind: flow.forward}
  sink: {kind: test.collect}
edges:
  - src -> fwd -> mid
  - {from: mid, to: sink, capacity: 2}
)"),
          2);
  auto& fwd = *s.remote[1];
  auto& sink = *s.remote[3];
  auto values = [&] {
    return sink.with([](seen& x) {
      std::vector<std::int64_t> out;
      for (const auto& b : x.batches)
        for (const auto& v : b.values) out.push_back(v.as_int());
      return out;
    });
  };
  // The old fwd sends 0..3: mid passes 0, 1 on and queues 2, 3. Then fwd is lost and replaced.
  s.send(1, 2, batch(0, 0, 4, local::no_index, true));
  REQUIRE(eventually([&] { return values().size() == 2; }));
  s.send(1, 2, local::producer_replaced_msg{0});
  REQUIRE(eventually([&] { return fwd.with([](seen& x) { return x.acks.size(); }) == 1; }));
  CHECK(fwd.with([](seen& x) { return x.acks[0]; }) == 0);  // fwd's out-link 0
  auto before = fwd.with([](seen& x) { return x.credits; });
  // The replacement sends 2..7 again from input 2 on, its window's worth (2 and 3 come back at once): the
  // old fwd's queued 2 and 3 no longer count against the link, or these would pass its capacity.
  s.send(1, 2, batch(0, 2, 6, local::no_index, true));
  s.send(1, 2, batch(0, 6, 8, local::no_index, true));
  s.send(1, 2, local::eos_msg{0});
  for (int k = 0; k < 3; ++k) {  // sink takes two at a time
    auto n = values().size();
    s.send(3, 2, local::credit_msg{0, 2});
    REQUIRE(eventually([&] { return values().size() == n + 2; }));
  }
  s.send(3, 2, local::credit_msg{0, 2});  // room again: mid takes the end of stream and finishes
  auto r = s.finish();
  INFO(r.error);
  CHECK(r.result == outcome::ok);
  CHECK(values() == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  // The replacement's 6 values all came back (2 dropped, 4 consumed); the old queued 2 and 3 earned none.
  // (The test actor counts them as they arrive: the last may come just after the slice ended.)
  auto since = [&] { return fwd.with([](seen& x) { return x.credits; }) - before; };
  eventually([&] { return since() >= 6; });
  std::this_thread::sleep_for(100ms);
  CHECK(since() == 6);
}

TEST_CASE("a replaced producer whose stream had ended: its repeats and its second end of stream are dropped" *
          doctest::timeout(30)) {
  slice s(after_fwd("  out: {kind: test.collect}\n  other: {kind: source.sequence}\n"
                    "edges: [src -> fwd, fwd -> out, other -> out.aux]\n"),
          2);
  s.send(1, 2, batch(0, 0, 3, local::no_index, true));
  s.send(1, 2, local::eos_msg{0});
  // Taken (and credited) before the replacement: out may not have started when the batch came.
  REQUIRE(eventually([&] { return s.r.sink->snapshot().size() == 3; }));
  s.send(1, 2, local::producer_replaced_msg{0});
  s.send(1, 2, batch(0, 0, 3, local::no_index, true));
  s.send(1, 2, local::eos_msg{0});
  s.send(3, 2, local::eos_msg{1});  // the other input ends: out finishes
  auto r = s.finish();
  INFO(r.error);
  CHECK(r.result == outcome::ok);
  CHECK(s.r.sink->snapshot().size() == 3);
  // The repeats were credited, not held (counted as they arrive, maybe just after the slice ended).
  auto credits = [&] { return s.remote[1]->with([](seen& x) { return x.credits; }); };
  eventually([&] { return credits() >= 6; });
  std::this_thread::sleep_for(100ms);
  CHECK(credits() == 6);
}

TEST_CASE("a replacement's repeats are dropped by input and output: runs cut where the last tag falls" *
          doctest::timeout(30)) {
  slice s(after_fwd("  out: {kind: test.collect}\n  other: {kind: source.sequence}\n"
                    "edges: [src -> fwd, {from: fwd, to: out, capacity: 16}, other -> out.aux]\n"),
          2);
  auto tagged = [](std::initializer_list<std::pair<std::int64_t, local::lineage>> vs) {
    local::batch_msg b{0, {}};
    for (const auto& [v, t] : vs) {
      b.values.push_back(value{v});
      b.tags.push_back(t);
    }
    return b;
  };
  // The old fwd: input 5 gave two outputs (nth 0, 1), input 6 one, then inputs 7..9 one each (a run).
  s.send(1, 2, tagged({{1, {0, 0, 5}}, {2, {0, 1, 5}}, {3, {0, 0, 6}}}));
  REQUIRE(eventually([&] { return s.r.sink->snapshot().size() == 3; }));
  s.send(1, 2, local::producer_replaced_msg{0});
  // The replacement starts again at input 5: (0, 1, 5) and (0, 0, 6) are repeats, (0, 0, 7) on are new;
  // within the run 6..9 the cut falls after its first tag.
  s.send(1, 2, tagged({{2, {0, 1, 5}}, {3, {0, 0, 6}}, {4, {0, 0, 7}}, {5, {0, 0, 8}}}));
  s.send(1, 2, tagged({{4, {0, 0, 7}}, {5, {0, 0, 8}}, {6, {0, 0, 9}}, {7, {0, 1, 9}}}));
  // A run of third outputs (nth 2) of inputs 8 and 9: (0, 2, 8) is at or below (0, 1, 9), (0, 2, 9) past it.
  s.send(1, 2, tagged({{8, {0, 2, 8}}, {9, {0, 2, 9}}}));
  s.send(1, 2, local::eos_msg{0});
  s.send(3, 2, local::eos_msg{1});
  auto r = s.finish();
  INFO(r.error);
  CHECK(r.result == outcome::ok);
  std::vector<std::int64_t> got;
  for (const auto& v : s.r.sink->snapshot()) got.push_back(v.as_int());
  CHECK(got == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 9});
}
