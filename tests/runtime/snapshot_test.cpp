// tests/runtime/snapshot_test.cpp: consistent snapshots of a running graph (runtime/local/snapshot.hpp,
// docs/durability.md). The two halves of a link a snapshot keeps: the consumer records each in-link from
// its consumption point until the link's barrier or end of stream (inbox::start_recording), and the
// producer keeps its committed values not yet sent, without the open attempt's (outbox::committed_unsent).
// And the whole: a run stopped after a snapshot and resumed from it writes exactly what an uninterrupted
// run writes.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include "loom/graph/load.hpp"

#include "loom/runtime/local/inbox.hpp"
#include "loom/runtime/local/part_value.hpp"
#include "loom/runtime/local/outbox.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "tests/support/graph_runner.hpp"

using namespace loom;
using outcome = local::run_report::outcome;

namespace {

std::vector<std::int64_t> ints(const std::vector<value>& vs) {
  std::vector<std::int64_t> out;
  for (const auto& v : vs) out.push_back(v.as_int());
  return out;
}

local::batch_msg batch(local::link_id link, std::vector<std::int64_t> xs) {
  local::batch_msg b{link, {}};
  for (auto x : xs) b.values.emplace_back(x);
  return b;
}

caf::behavior ignore_all(caf::event_based_actor*, int) {
  return {[](local::credit_msg&) {}};
}

// Runs `body` inside an actor (the inbox and outbox send credits and batches as one) and waits for it.
template <class Body>
void in_actor(caf::actor_system& sys, Body body) {
  std::promise<void> done;
  auto f = done.get_future();
  sys.spawn(
      [](caf::event_based_actor* self, Body body, std::promise<void>* done) -> caf::behavior {
        body(self);
        done->set_value();
        self->quit();
        return {};
      },
      std::move(body), &done);
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
}

}  // namespace

TEST_CASE("an inbox records each in-link from its consumption point to the link's barrier or end of stream" *
          doctest::timeout(60)) {
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  local::instance_plan plan;
  plan.input_names = {"in"};
  // Three links into port 0, capacity 100: from producers 0, 1 and 2.
  for (std::uint32_t p = 0; p < 3; ++p) plan.in_links.push_back({0, p, 0, 100, "p.out -> c.in"});
  std::vector<caf::actor> actors{sys.spawn(ignore_all, 0), sys.spawn(ignore_all, 1), sys.spawn(ignore_all, 2)};
  in_actor(sys, [plan, actors](caf::event_based_actor* self) {
    local::batch_pool pool;
    local::inbox in;
    in.wire(plan, actors, pool);
    auto b0 = batch(0, {1, 2, 3});
    auto b1 = batch(1, {10, 11});
    auto b2 = batch(2, {20});
    CHECK_FALSE(in.add(self, b0));
    CHECK_FALSE(in.add(self, b1));
    CHECK_FALSE(in.add(self, b2));
    CHECK_FALSE(in.add_eos(2));  // link 2 ended before the snapshot; its last value is still queued
    in.pop_values(self, 2);      // 1 and 2 consumed (committed) before the part is taken
    CHECK(in.front_run() == 1);  // 3: the open attempt's value, still at the head

    in.start_recording();
    CHECK(in.recording());
    auto b3 = batch(0, {4});
    CHECK_FALSE(in.add(self, b3));  // before link 0's barrier: recorded
    CHECK(in.end_recording(0));
    auto b4 = batch(0, {5});
    CHECK_FALSE(in.add(self, b4));  // after its barrier: the producer's part covers it, not recorded
    CHECK(in.recording());          // link 1 still records
    auto b5 = batch(1, {12});
    CHECK_FALSE(in.add(self, b5));
    CHECK_FALSE(in.add_eos(1));  // its end of stream before a barrier ends its recording
    CHECK_FALSE(in.recording());
    CHECK_FALSE(in.end_recording(7));  // a link it does not have

    auto r = in.take_records();
    REQUIRE(r.size() == 3);
    CHECK(r[0].link == 0);
    CHECK(ints(r[0].values) == std::vector<std::int64_t>{3, 4});
    CHECK_FALSE(r[0].eos);
    CHECK_FALSE(r[0].ended);
    CHECK(ints(r[1].values) == std::vector<std::int64_t>{10, 11, 12});
    CHECK(r[1].eos);  // arrived while recording
    CHECK_FALSE(r[1].ended);
    CHECK(ints(r[2].values) == std::vector<std::int64_t>{20});
    CHECK(r[2].eos);  // queued behind its last value
    CHECK_FALSE(r[2].ended);
    // Recording does not consume: the queue is as it was, 3 4 5 on link 0 first.
    CHECK(in.depth() == 7);
    CHECK(in.front_at(0).as_int() == 3);
    CHECK_FALSE(in.recording());
    auto b6 = batch(0, {6});
    CHECK_FALSE(in.add(self, b6));
    CHECK(in.take_records().empty());  // nothing recorded outside a snapshot

    // Consume everything of link 2 (its value and end of stream): a later part records it as ended.
    while (!in.empty() && in.front_link() != 2) in.pop_values(self, in.front_run());
    in.pop_values(self, in.front_run());
    CHECK(in.front_is_eos());
    in.pop_eos(self);
    in.start_recording();
    auto r2 = in.take_records();
    CHECK(r2[2].ended);
    CHECK_FALSE(r2[2].eos);
    CHECK(r2[2].values.empty());
  });
  for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("a resumed inbox queues the recorded values ahead of what arrived before the node started" *
          doctest::timeout(60)) {
  // A producer on another host (or one started first) may send before this node's start, when its part is
  // restored: on each link the recorded values come first (they were sent before anything the producer sends
  // after its own resume). Found by the cluster test: values came out of order after `loom resume`.
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  local::instance_plan plan;
  plan.input_names = {"in"};
  for (std::uint32_t p = 0; p < 2; ++p) plan.in_links.push_back({0, p, 0, 100, "p.out -> c.in"});
  std::vector<caf::actor> actors{sys.spawn(ignore_all, 0), sys.spawn(ignore_all, 1)};
  in_actor(sys, [plan, actors](caf::event_based_actor* self) {
    local::batch_pool pool;
    local::inbox in;
    in.wire(plan, actors, pool);
    auto early = batch(0, {7, 8});  // sent by the resumed producer of link 0 before this node started
    CHECK_FALSE(in.add(self, early));
    std::vector<local::inbox::record> recorded{{0, {value(std::int64_t{5}), value(std::int64_t{6})}, false, false},
                                               {1, {value(std::int64_t{50})}, false, false}};
    CHECK_FALSE(in.restore(recorded).has_value());
    std::vector<std::int64_t> link0, link1;
    while (!in.empty()) {
      auto link = in.front_link();
      auto n = in.front_run();
      for (std::size_t k = 0; k < n; ++k) (link == 0 ? link0 : link1).push_back(in.front_at(k).as_int());
      in.pop_values(self, n);
    }
    CHECK(link0 == std::vector<std::int64_t>{5, 6, 7, 8});
    CHECK(link1 == std::vector<std::int64_t>{50});
    CHECK(in.restore({{9, {}, false, false}}).has_value());  // a link it does not have
  });
  for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("an instance's part travels as a value and comes back the same; a part that does not fit is refused") {
  local::instance_plan plan;
  plan.index = 4;
  plan.init.name = "gather";
  plan.input_names = {"in", "side"};
  for (std::uint32_t p = 0; p < 2; ++p) plan.in_links.push_back({0, p, 0, 8, "p.out -> gather.in"});
  plan.out_ports.resize(1);
  plan.out_ports[0].push_back({});
  plan.out_ports[0][0].links.resize(2);  // two out-links
  local::instance_part part;
  part.instance = 4;
  part.state = local::instance_part::phase::finishing;
  part.checkpoint = value(value_map{{"held", value_list{value(1), value(2)}}});
  part.replay = {{false, 1, value("x")}, {true, 0, value()}};
  part.to_close = {1};
  part.pulled_all = true;
  part.inputs = {{0, {value(3), value(4)}, true, false}, {1, {}, false, true}};
  part.outputs = {{1, {value(5.5)}}};
  part.pending = {{9, value("shown"), 1764000000000, 0}};
  std::string error;
  auto back = local::part_from_value(local::to_value(part), plan, error);
  REQUIRE_MESSAGE(back, error);
  CHECK(back->instance == 4);
  CHECK(back->state == local::instance_part::phase::finishing);
  CHECK(back->checkpoint == part.checkpoint);
  REQUIRE(back->replay.size() == 2);
  CHECK(back->replay[0].port == 1);
  CHECK(back->replay[0].v == value("x"));
  CHECK(back->replay[1].close);
  CHECK(back->to_close == std::vector<std::size_t>{1});
  CHECK(back->pulled_all);
  REQUIRE(back->inputs.size() == 2);
  CHECK(ints(back->inputs[0].values) == std::vector<std::int64_t>{3, 4});
  CHECK(back->inputs[0].eos);
  CHECK(back->inputs[1].ended);
  REQUIRE(back->outputs.size() == 1);
  CHECK(back->outputs[0].link == 1);
  CHECK(back->outputs[0].values[0] == value(5.5));
  REQUIRE(back->pending.size() == 1);
  CHECK(back->pending[0].id == 9);
  CHECK(back->pending[0].asked_unix_ms == 1764000000000);

  auto refused = [&](local::instance_part p) {
    std::string why;
    CHECK_FALSE(local::part_from_value(local::to_value(p), plan, why));
    return why;
  };
  auto other = part;
  other.instance = 5;
  CHECK(refused(other).find("it is instance 5's") != std::string::npos);
  auto port = part;
  port.replay[0].port = 2;  // the node has two input ports
  CHECK(refused(port).find("the input port 2 is not below 2") != std::string::npos);
  auto in_link = part;
  in_link.inputs[0].link = 2;
  CHECK(refused(in_link).find("the in-link 2 is not below 2") != std::string::npos);
  auto out_link = part;
  out_link.outputs[0].link = 2;
  CHECK(refused(out_link).find("the out-link 2 is not below 2") != std::string::npos);
  std::string why;
  CHECK_FALSE(local::part_from_value(value(7), plan, why));
  CHECK(why == "the snapshot part of instance 4 (`gather`): it is not a map");
}

TEST_CASE("an outbox's committed values not yet sent are kept for a snapshot; the open attempt's are not" *
          doctest::timeout(60)) {
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  local::instance_plan plan;
  // One output port, one edge to two consumer replicas (links 0 and 1), capacity 4 each.
  plan.out_ports = {{local::out_edge_plan{{{1, 0, 4}, {2, 0, 4}}, 0}}};
  auto run = std::make_shared<local::run_state>(3, 1);
  run->actors = {caf::actor{}, sys.spawn(ignore_all, 1), sys.spawn(ignore_all, 2)};
  in_actor(sys, [plan, run](caf::event_based_actor*) {
    local::batch_pool pool;
    local::outbox out;
    out.wire(plan, run->actors, *run, pool);
    out.begin();
    for (std::int64_t i = 0; i < 3; ++i) out.emit(0, value{i});
    out.commit();
    out.begin();  // the open attempt: 3 and 4 must not be in the part
    out.emit(0, value{std::int64_t{3}});
    out.emit(0, value{std::int64_t{4}});
    auto u = out.committed_unsent();
    std::vector<std::int64_t> all;
    for (const auto& x : u) {
      CHECK(x.link < 2);
      auto vs = ints(x.values);
      all.insert(all.end(), vs.begin(), vs.end());
    }
    std::sort(all.begin(), all.end());
    CHECK(all == std::vector<std::int64_t>{0, 1, 2});
    out.rollback();
    CHECK(out.committed_unsent().size() == u.size());
  });
  for (auto& a : run->actors)
    if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

namespace {

// Forwards; at its `at`-th value (counting from 0; -1: never) it pauses for a minute, so that the graph
// stalls with values queued and in flight. Tells the test it paused.
class pause_at final : public node {
 public:
  pause_at(std::int64_t at, std::shared_ptr<std::atomic<bool>> paused) : at_(at), paused_(std::move(paused)) {}
  void on_message(context& ctx, std::size_t, const value& v) override {
    ctx.emit(v);
    if (seen_++ == at_) {
      paused_->store(true);
      ctx.pause_for(std::chrono::minutes(1));
    }
  }

 private:
  std::int64_t at_;
  std::int64_t seen_ = 0;
  std::shared_ptr<std::atomic<bool>> paused_;
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("a run stopped after a snapshot and resumed from it writes exactly what an uninterrupted run writes" *
          doctest::timeout(120)) {
  test::graph_runner fx;
  auto paused = std::make_shared<std::atomic<bool>>(false);
  graph::kind_spec spec{"test.pause_at", "Forwards; pauses at its at-th value.", {{"in", "v"}}, {{"out", "v"}},
                        {graph::param_spec::integer("at", "the value to pause at; -1: never").def(-1)}, {}, {}};
  fx.kinds.add({spec, [paused](const node_init& i) { return std::make_unique<pause_at>(i.params.get_int("at"), paused); }});
  auto dir = std::filesystem::temp_directory_path() / ("loom-snapshot-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // A stateful source, a stateful batch, the pause, a stateful gather and a stateful sink that writes;
  // small edges so that values wait on every link.
  auto yaml = [&](const std::string& out, std::int64_t at) {
    return fmt::format(R"(graph: t
defaults: {{capacity: 8}}
nodes:
  src: {{kind: source.sequence, params: {{count: 20000}}}}
  batch: {{kind: flow.batch, params: {{size: 7}}}}
  hold: {{kind: test.pause_at, params: {{at: {}}}}}
  gather: {{kind: flow.gather, params: {{count: 3}}}}
  sink: {{kind: sink.file, params: {{path: "{}"}}}}
edges: [src -> batch, batch -> hold, hold -> gather, gather -> sink]
)",
                       at, out);
  };
  auto load = [&](const std::string& text) {
    graph::diagnostics d;
    auto g = graph::load_graph_text(text, "snapshot.yaml", d);
    INFO(d.str());
    REQUIRE(g.has_value());
    return *g;
  };
  auto reference = (dir / "reference.jsonl").string();
  REQUIRE(fx.run(load(yaml(reference, -1))).result == outcome::ok);
  auto expect = read_file(reference);
  REQUIRE(expect.size() > 10000);

  // Paused at several points of the stream (before the first batch, mid-way, at the last batch).
  for (std::int64_t at : {0, 1, 400, 1500, 2857}) {
    CAPTURE(at);
    auto out = (dir / fmt::format("out-{}.jsonl", at)).string();
    paused->store(false);
    std::mutex m;
    std::shared_ptr<const local::snapshot> kept;
    int after_pause = 0;
    std::atomic<bool> stop{false};
    local::run_options o;
    o.snapshot_every = std::chrono::milliseconds(1);
    // The second snapshot that starts after the pause: every part of it was taken while the graph stalled.
    bool was_paused = false;
    o.on_snapshot = [&](std::shared_ptr<const local::snapshot> s) {
      std::lock_guard lock(m);
      if (was_paused && ++after_pause == 1) {
        kept = std::move(s);
        stop = true;
      }
      was_paused = paused->load();
    };
    o.interrupted = [&] { return stop.load(); };
    auto first = fx.run(load(yaml(out, at)), o);
    REQUIRE(first.result == outcome::interrupted);
    REQUIRE(kept);
    // Held values: the pause's input link is full, so some part recorded values in flight (but at the last
    // batch, when everything before the pause has ended).
    std::size_t in_flight = 0, unsent = 0;
    for (const auto& p : kept->parts) {
      REQUIRE(p);
      for (const auto& r : p->inputs) in_flight += r.values.size();
      for (const auto& u : p->outputs) unsent += u.values.size();
    }
    if (at < 2857) CHECK(in_flight > 0);
    INFO("values recorded in flight: " << in_flight << ", committed and unsent: " << unsent);

    // The same graph without the pause, from the snapshot: the file ends exactly as the reference.
    local::run_options resume;
    resume.restore = kept;
    auto second = fx.run(load(yaml(out, -1)), resume);
    INFO(second.error);
    REQUIRE(second.result == outcome::ok);
    CHECK(read_file(out) == expect);
  }
  std::filesystem::remove_all(dir);
}

namespace {

// Forwards; counts the snapshots that took its part (node::on_snapshot), or fails there.
class synced final : public node {
 public:
  synced(std::shared_ptr<std::atomic<int>> calls, bool fail) : calls_(std::move(calls)), fail_(fail) {}
  void on_message(context& ctx, std::size_t, const value& v) override { ctx.emit(v); }
  void on_snapshot() override {
    calls_->fetch_add(1);
    if (fail_) throw std::runtime_error("the disk is gone");
  }

 private:
  std::shared_ptr<std::atomic<int>> calls_;
  bool fail_;
};

// Emits numbers until the run has delivered `enough` snapshots (or is stopped): a run that lasts as long as
// the test needs, whatever the machine's speed.
class until_snapshots final : public node {
 public:
  until_snapshots(std::shared_ptr<std::atomic<int>> delivered, int enough)
      : delivered_(std::move(delivered)), enough_(enough) {}
  bool on_pull(context& ctx) override {
    if (ctx.stopping() || delivered_->load() >= enough_) return false;
    for (std::size_t i = 0, n = std::min<std::size_t>(ctx.budget(), 64); i < n; ++i) ctx.emit(value(next_++));
    return true;
  }

 private:
  std::shared_ptr<std::atomic<int>> delivered_;
  int enough_;
  std::int64_t next_ = 0;
};

}  // namespace

TEST_CASE("a snapshot calls node::on_snapshot before it takes the node's part; a throw there fails the node" *
          doctest::timeout(60)) {
  test::graph_runner fx;
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto parts = std::make_shared<std::atomic<int>>(0);  // snapshots delivered with the synced node's part
  graph::kind_spec spec{"test.synced", "Forwards.", {{"in", "v"}}, {{"out", "v"}},
                        {graph::param_spec::boolean("fail", "throw in on_snapshot").def(false)}, {}, {}};
  fx.kinds.add({spec, [calls](const node_init& i) { return std::make_unique<synced>(calls, i.params.get_bool("fail")); }});
  graph::kind_spec source{"test.until_snapshots", "Emits until 3 snapshots.", {}, {{"out", "v"}}, {}, {}, {}};
  fx.kinds.add({source, [parts](const node_init&) { return std::make_unique<until_snapshots>(parts, 3); }});
  auto load = [](const std::string& text) {
    graph::diagnostics d;
    auto g = graph::load_graph_text(text, "synced.yaml", d);
    INFO(d.str());
    REQUIRE(g.has_value());
    return *g;
  };
  auto yaml = [](bool fail) {
    return fmt::format(R"(graph: t
defaults: {{capacity: 8}}
nodes:
  src: {{kind: test.until_snapshots}}
  sync: {{kind: test.synced, params: {{fail: {}}}}}
  out: {{kind: sink.count}}
edges: [src -> sync, sync -> out]
)",
                       fail ? "true" : "false");
  };
  local::run_options o;
  o.snapshot_every = std::chrono::milliseconds(1);
  o.on_snapshot = [parts](std::shared_ptr<const local::snapshot> s) {
    if (s->parts[1] && s->parts[1]->state != local::instance_part::phase::finished) parts->fetch_add(1);
  };
  auto ok = fx.run(load(yaml(false)), o);
  REQUIRE(ok.result == outcome::ok);
  CHECK(parts->load() >= 3);
  CHECK(calls->load() >= parts->load());  // one per part taken (an epoch open at the end is never delivered)
  parts->store(0);
  auto failed = fx.run(load(yaml(true)), o);  // the first snapshot fails the node; the source then stops
  REQUIRE(failed.result == outcome::failed);
  CHECK(failed.error.find("node `sync` (test.synced) failed while a snapshot took its part: the disk is gone") !=
        std::string::npos);
}
