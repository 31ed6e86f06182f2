// tests/transport/link_bytes_test.cpp: a link across hosts bounds the bytes it holds as well as its values
// (out_link_plan::bytes, docs/cluster.md "The fast path across hosts"): a window of many values stops at the
// byte budget when its values are large and reaches its value count when they are small; credits free the
// bytes of the values they cover; the consumer grants credits once half the byte budget is consumed (so a
// producer stopped by bytes, far below the window's half, is never left waiting); a rolled-back attempt
// gives its bytes back; a link without a budget keeps counting values only. cluster::widen_remote_links
// puts the same budget on both ends of each unsized link across hosts.
#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "loom/actors/builtins.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/local/inbox.hpp"
#include "loom/runtime/local/outbox.hpp"

using namespace loom;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t kib = 1024;

value big(std::size_t n) {
  return value(bytes(n, std::byte{7}));
}

bool eventually(const std::function<bool()>& p) {
  auto end = std::chrono::steady_clock::now() + 20s;
  while (!p() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(2ms);
  return p();
}

// What the outbox tests found, read once `done` is set.
struct found {
  std::mutex m;
  std::vector<std::size_t> counts;
  std::vector<std::uint32_t> credits;  // credit_msg counts, in order
  std::atomic<int> done{0};
};

// Emits `make()` on port 0 as a source would (one value per budget check) until the outbox is blocked or
// `limit` values went; returns how many.
template <class Make>
std::size_t fill(local::outbox& out, Make make, std::size_t limit = 1'000'000) {
  std::size_t n = 0;
  while (n < limit && !out.blocked() && out.budget() > 0) {
    out.emit(0, make());
    ++n;
  }
  return n;
}

caf::behavior sink(caf::event_based_actor*,
                   int) {  // the int: CAF 0.17 mis-spawns a function of no arguments (UBSan)
  return {[](local::batch_msg&) {}};
}

}  // namespace

TEST_CASE("a link's byte budget stops a window of large values; small values fill the window" *
          doctest::timeout(60)) {
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  // Instance 0 -> 1 on another host: window 65536, byte budget 1 MiB. Instance 2 -> 3 (another run of the
  // same outbox): the same window, no budget.
  auto run = std::make_shared<local::run_state>(2, 1);
  run->actors = {caf::actor{}, sys.spawn(sink, 0)};
  run->remote = {0, 1};
  auto f = std::make_shared<found>();
  sys.spawn(
      [](caf::event_based_actor* self, std::shared_ptr<local::run_state> run, std::shared_ptr<found> f) {
        auto plan_with = [](std::int64_t bytes) {
          local::instance_plan plan;
          local::out_link_plan l{1, 0, 65536};
          l.bytes = bytes;
          plan.out_ports = {{local::out_edge_plan{{l}, 0}}};
          return plan;
        };
        local::batch_pool pool;
        std::lock_guard lock(f->m);
        {
          // 64 KiB values (65552 bytes each with the value): the 16th passes 1 MiB, then no more room.
          local::outbox out;
          out.wire(plan_with(1024 * kib), run->actors, *run, pool);
          f->counts.push_back(fill(out, [] { return big(64 * kib); }));  // [0]
          f->counts.push_back(out.flush(self));                          // [1]: all 16 go, held in flight
          f->counts.push_back(out.blocked());                            // [2]: still out of bytes
          REQUIRE(out.credit(0, 8));                                     // the first 8 consumed
          f->counts.push_back(out.blocked());                            // [3]
          f->counts.push_back(fill(out, [] { return big(64 * kib); }));  // [4]: 8 more fit
          // An attempt rolled back gives its bytes back: 8 values emitted in it, then discarded.
          REQUIRE(out.credit(0, 8));
          out.flush(self);
          out.begin();
          f->counts.push_back(fill(out, [] { return big(64 * kib); }));  // [5]: 8 (8 are in flight)
          out.rollback();
          f->counts.push_back(out.blocked());                            // [6]
          f->counts.push_back(fill(out, [] { return big(64 * kib); }));  // [7]: 8 again
        }
        {
          // Ints (16 bytes each): a budget of 2 MiB holds 131072 of them, so the window is the bound.
          local::outbox out;
          out.wire(plan_with(2048 * kib), run->actors, *run, pool);
          std::int64_t i = 0;
          f->counts.push_back(fill(out, [&] { return value{i++}; }));  // [8]
        }
        {
          // No budget: a window of 65536 takes 100 large values (as it did before budgets).
          local::outbox out;
          out.wire(plan_with(0), run->actors, *run, pool);
          f->counts.push_back(fill(
              out, [] { return big(64 * kib); }, 100));  // [9]
        }
        {
          // A flush during an attempt sends the committed values only: their bytes go in flight, the
          // attempt's stay queued until its rollback gives them back.
          local::outbox out;
          out.wire(plan_with(1024 * kib), run->actors, *run, pool);
          f->counts.push_back(fill(out, [] { return big(64 * kib); }, 8));  // [10]: 8 committed
          out.begin();
          f->counts.push_back(fill(out, [] { return big(64 * kib); }, 4));  // [11]: 4 in the attempt
          f->counts.push_back(out.flush(self));                             // [12]: the 8 go
          out.rollback();
          REQUIRE(out.credit(0, 8));
          f->counts.push_back(fill(out, [] { return big(64 * kib); }));     // [13]: all 16 fit again
        }
        f->done = 1;
        return caf::behavior{[](int) {}};
      },
      run, f);
  REQUIRE(eventually([&] { return f->done.load() == 1; }));
  std::lock_guard lock(f->m);
  REQUIRE(f->counts.size() == 14);
  CHECK(f->counts[0] == 16);
  CHECK(f->counts[1] == 16);
  CHECK(f->counts[2] == 1);
  CHECK(f->counts[3] == 0);
  CHECK(f->counts[4] == 8);
  CHECK(f->counts[5] == 8);
  CHECK(f->counts[6] == 0);
  CHECK(f->counts[7] == 8);
  CHECK(f->counts[8] == 65536);
  CHECK(f->counts[9] == 100);
  CHECK(f->counts[10] == 8);
  CHECK(f->counts[11] == 4);
  CHECK(f->counts[12] == 8);
  CHECK(f->counts[13] == 16);
  for (auto& a : run->actors)
    if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("a consumer grants credits once half its link's byte budget is consumed" * doctest::timeout(60)) {
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  auto f = std::make_shared<found>();
  // The producer records the credits; the consumer's last message (an int) comes after all of them (CAF
  // keeps the order of messages between two actors).
  auto producer = sys.spawn(
      [f](caf::event_based_actor*, int) {
        return caf::behavior{[f](local::credit_msg& c) {
                               std::lock_guard lock(f->m);
                               f->credits.push_back(c.credits);
                             },
                             [f](int) { f->done = 1; }};
      },
      0);
  sys.spawn(
      [](caf::event_based_actor* self, caf::actor producer, std::shared_ptr<found> f) {
        // Two in-links from instance 0, both with a window of 65536: link 0 with a byte budget of 1 MiB,
        // link 1 without.
        local::instance_plan plan;
        plan.input_names = {"in"};
        plan.in_links = {local::in_link_plan{0, 0, 0, 65536, "a -> b", 1024 * kib},
                         local::in_link_plan{0, 0, 1, 65536, "c -> b", 0}};
        local::batch_pool pool;
        local::inbox in;
        in.wire(plan, {producer}, pool);
        for (local::link_id l : {0u, 1u}) {
          local::batch_msg b;
          b.link = l;
          for (int i = 0; i < 16; ++i) b.values.push_back(big(64 * kib));
          REQUIRE_FALSE(in.add(self, b));
          for (int i = 0; i < 16; ++i) in.pop_values(self, 1);  // one by one: 8 fill half the budget
        }
        self->send(producer, 1);
        return caf::behavior{[](int) {}};
      },
      producer, f);
  REQUIRE(eventually([&] { return f->done.load() == 1; }));
  std::lock_guard lock(f->m);
  // Link 0: 8 and 8. Link 1 (no budget): nothing, 16 values are far below half of 65536.
  CHECK(f->credits == std::vector<std::uint32_t>{8, 8});
  caf::anon_send_exit(producer, caf::exit_reason::user_shutdown);
}

TEST_CASE("widen_remote_links puts the byte budget on both ends of each unsized link across hosts" *
          doctest::timeout(30)) {
  registry kinds;
  actors::register_builtins(kinds);
  graph::diagnostics diags;
  auto g = graph::load_graph_text(
      "graph: w\nnodes:\n  numbers: {kind: source.sequence}\n  pass: {kind: flow.forward}\n"
      "  slow: {kind: flow.forward}\n  tally: {kind: sink.count}\n"
      "edges:\n  - numbers -> pass\n  - {from: pass, to: slow, capacity: 16}\n  - slow -> tally\n",
      "w.yaml", diags);
  REQUIRE(g);
  graph::validate(*g, kinds, diags);
  REQUIRE_FALSE(diags.has_errors());
  graph::apply_defaults(*g, kinds);
  auto d = local::expand(*g, kinds);
  std::vector<std::uint32_t> host{0, 1, 0, 0};
  auto budget = [&](std::uint32_t p) {
    const auto& l = d.instances[p].out_ports[0][0].links[0];
    return std::pair{l.bytes, d.instances[l.consumer].in_links[l.remote].bytes};
  };
  CHECK(cluster::widen_remote_links(d, host, 0) == 0);
  CHECK(budget(0) == std::pair<std::int64_t, std::int64_t>{0, 0});  // no window: no budget
  CHECK(cluster::widen_remote_links(d, host, 65536, 5 * kib) == 1);
  CHECK(budget(0) == std::pair<std::int64_t, std::int64_t>{5 * kib, 5 * kib});  // across, unsized
  CHECK(budget(1) == std::pair<std::int64_t, std::int64_t>{0, 0});              // across, sized: its capacity
  CHECK(budget(2) == std::pair<std::int64_t, std::int64_t>{0, 0});              // one host
}
