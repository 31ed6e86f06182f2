// tests/runtime/snapshot_parts_test.cpp: the two halves of a link that a consistent snapshot keeps
// (docs/durability.md): the consumer records each in-link from its consumption point until the link's
// barrier or end of stream (inbox::start_recording), and the producer keeps its committed values not yet
// sent, without the open attempt's (outbox::committed_unsent).
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <future>
#include <vector>

#include "loom/runtime/local/inbox.hpp"
#include "loom/runtime/local/outbox.hpp"

using namespace loom;

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
    CHECK(ints(r[1].values) == std::vector<std::int64_t>{10, 11, 12});
    CHECK(r[1].eos);
    CHECK(ints(r[2].values) == std::vector<std::int64_t>{20});
    CHECK(r[2].eos);
    // Recording does not consume: the queue is as it was, 3 4 5 on link 0 first.
    CHECK(in.depth() == 7);
    CHECK(in.front_at(0).as_int() == 3);
    CHECK_FALSE(in.recording());
    auto b6 = batch(0, {6});
    CHECK_FALSE(in.add(self, b6));
    CHECK(in.take_records().empty());  // nothing recorded outside a snapshot
  });
  for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
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
