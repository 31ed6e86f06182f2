// tests/runtime/decisions_test.cpp: decisions in the runtime (node.hpp: context::ask, node::on_decision;
// runtime/local/decisions.cpp). A decision reaches its node through run_options::poll_decisions and is handled
// there once: one for an id not pending (decided twice, or never asked) is dropped and counted late; a node
// does not finish while a decision is pending; an ask belongs to its attempt (a failed attempt's ask is
// dropped with it); a run that waits for people only stops as paused (detach_on_pause) with every pending
// decision in its last snapshot.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>

#include "loom/graph/load.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "tests/support/graph_runner.hpp"

using namespace loom;
using outcome = local::run_report::outcome;

namespace {

graph::graph load(const std::string& text) {
  graph::diagnostics d;
  auto g = graph::load_graph_text(text, "decisions.yaml", d);
  INFO(d.str());
  REQUIRE(g.has_value());
  return *g;
}

std::set<std::uint64_t> pending_ids(const local::snapshot& s) {
  std::set<std::uint64_t> ids;
  for (const auto& p : s.parts)
    if (p)
      for (const auto& d : p->pending) ids.insert(d.id);
  return ids;
}

const local::node_stats& stats_of(const local::run_report& r, const std::string& node) {
  for (const auto& n : r.nodes)
    if (n.node == node) return n;
  FAIL("no node " << node);
  return r.nodes.front();
}

// Asks about each value with id value*10 + attempt, and fails the first attempt at value 1: a restarted node
// that asked in the failed attempt must not hold that ask.
class asker final : public node {
 public:
  explicit asker(int attempt) : attempt_(attempt) {}
  void on_message(context& ctx, std::size_t, const value& v) override {
    ctx.ask(static_cast<std::uint64_t>(v.as_int() * 10 + attempt_), v);
    if (attempt_ == 0 && v.as_int() == 1) throw std::runtime_error("the first attempt at 1 fails");
  }

 private:
  int attempt_;
};

}  // namespace

TEST_CASE("decisions reach their node once; late ones are counted; the node finishes after the last" *
          doctest::timeout(60)) {
  test::graph_runner fx;
  auto g = load(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 3}}
  review: {kind: human.approve}
  out: {kind: test.collect}
edges: [src -> review, review.out -> out.in, review.rejected -> out.aux]
)");
  std::mutex m;
  bool sent = false;
  std::set<std::uint64_t> first_pending;
  local::run_options o;
  o.snapshot_every = std::chrono::milliseconds(5);
  o.on_snapshot = [&](std::shared_ptr<const local::snapshot> s) {
    std::lock_guard lock(m);
    if (first_pending.empty()) first_pending = pending_ids(*s);
  };
  // Once a snapshot shows the three pending: approve 2, then two that are late (2 again, and 7, never asked),
  // then reject 0 and edit 1 (the last: the node finishes then, and what comes after is never handled).
  o.poll_decisions = [&] {
    std::lock_guard lock(m);
    std::vector<local::routed_decision> out;
    if (sent || first_pending.size() < 3) return out;
    sent = true;
    std::uint32_t review = 1;  // instance numbering: src 0, review 1, out 2
    out.push_back({review, 2, decision{decision::verdict::approve, {}, {}, "test"}});
    out.push_back({review, 2, decision{decision::verdict::reject, {}, {}, "test"}});
    out.push_back({review, 7, decision{decision::verdict::approve, {}, {}, "test"}});
    out.push_back({review, 0, decision{decision::verdict::reject, {}, "no", "test"}});
    out.push_back({review, 1, decision{decision::verdict::edit, value("one"), {}, "test"}});
    return out;
  };
  auto r = fx.run(g, o);
  INFO(r.error);
  REQUIRE(r.result == outcome::ok);
  CHECK(first_pending == std::set<std::uint64_t>{0, 1, 2});
  auto got = fx.sink->snapshot();
  REQUIRE(got.size() == 3);
  // In the order decided; the rejected one on `rejected` (port aux here) with its reason.
  CHECK(got[0].as_int() == 2);
  CHECK(fx.sink->ports[1] == 1);
  REQUIRE(got[1].is_map());
  CHECK(got[1].find("value")->as_int() == 0);
  CHECK(got[1].find("reason")->as_string() == "no");
  CHECK(got[2].as_string() == "one");
  CHECK(stats_of(r, "review").late == 2);
}

TEST_CASE("an ask belongs to its attempt, and a run that waits only for people stops as paused" *
          doctest::timeout(60)) {
  test::graph_runner fx;
  graph::kind_spec spec{"test.asker", "Asks about each value.", {{"in", "v"}}, {{"out", "v"}}, {}, {}, {}};
  fx.kinds.add({spec, [](const node_init& i) { return std::make_unique<asker>(i.attempt); }});
  auto g = load(R"(graph: t
nodes:
  src: {kind: source.sequence, params: {count: 3}}
  ask: {kind: test.asker, restarts: 1}
  out: {kind: test.collect}
edges: [src -> ask, ask -> out]
)");
  std::mutex m;
  std::shared_ptr<const local::snapshot> last;
  local::run_options o;
  o.snapshot_every = std::chrono::milliseconds(20);
  o.detach_on_pause = true;
  o.on_snapshot = [&](std::shared_ptr<const local::snapshot> s) {
    std::lock_guard lock(m);
    last = std::move(s);
  };
  auto r = fx.run(g, o);
  INFO(r.error);
  REQUIRE(r.result == outcome::paused);
  REQUIRE(last);
  CHECK(last->quiet);
  CHECK(last->pending == 3);
  // 11 (value 1 again after the restart: the failed attempt's 10 is gone) and 21; value 0 asked 0 or, when it
  // was in the failed attempt's run of values, 1 (its 0 gone too).
  auto ids = pending_ids(*last);
  INFO("pending: " << [&] {
    std::string t;
    for (auto id : ids) t += std::to_string(id) + " ";
    return t;
  }());
  CHECK(ids.size() == 3);
  CHECK(!ids.contains(10));
  CHECK((ids.contains(0) || ids.contains(1)));
  CHECK((ids.contains(11) && ids.contains(21)));
  CHECK(stats_of(r, "ask").restarts == 1);
  CHECK(fx.sink->finished.load() == 1);  // stopped: the sink flushed (on_finish runs on a cancel)
}
