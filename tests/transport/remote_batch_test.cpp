// tests/transport/remote_batch_test.cpp: a busy producer's link to another host gathers values into fuller
// batches (outbox::flush with `more`, outbox::remote_batch) instead of one batch per turn, while a link to
// an instance on the same host gets a batch every turn; a link never holds past its credits, the held
// values go at the next full flush, and every value arrives once and in order. A movable instance's outbox
// (lineage tags) gathers the same way, each value with its tag.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <chrono>
#include <mutex>
#include <thread>

#include "loom/runtime/local/outbox.hpp"

using namespace loom;
using namespace std::chrono_literals;

namespace {

struct seen {
  std::mutex m;
  std::vector<std::size_t> sizes;  // of each batch, in order
  std::vector<std::int64_t> values;
  std::vector<local::lineage> tags;
  std::size_t count() {
    std::lock_guard lock(m);
    return values.size();
  }
};

caf::behavior recorder(caf::event_based_actor*, std::shared_ptr<seen> s) {
  return {
      [s](local::batch_msg& b) {
        std::lock_guard lock(s->m);
        s->sizes.push_back(b.values.size());
        for (const auto& v : b.values) s->values.push_back(v.as_int());
        auto tags = b.tags.expand();
        s->tags.insert(s->tags.end(), tags.begin(), tags.end());
      },
  };
}

bool eventually(const std::function<bool()>& p) {
  auto end = std::chrono::steady_clock::now() + 20s;
  while (!p() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(2ms);
  return p();
}

}  // namespace

TEST_CASE("a busy producer's link to another host sends fuller batches; a local link one per turn" *
          doctest::timeout(60)) {
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  auto far = std::make_shared<seen>(), near = std::make_shared<seen>(), narrow = std::make_shared<seen>();
  // Instance 0 emits on port 0 to 1 (another host) and 2 (this host), on port 1 to 3 (another host, 100
  // credits).
  local::instance_plan plan;
  plan.out_ports = {{local::out_edge_plan{{{1, 0, 4096}}, 0}, local::out_edge_plan{{{2, 0, 4096}}, 1}},
                    {local::out_edge_plan{{{3, 0, 100}}, 2}}};
  auto run = std::make_shared<local::run_state>(4, 3);
  run->actors = {caf::actor{}, sys.spawn(recorder, far), sys.spawn(recorder, near), sys.spawn(recorder, narrow)};
  run->remote = {0, 1, 0, 1};
  auto done = std::make_shared<std::atomic<int>>(0);
  // The state goes in as spawn arguments: CAF 0.17 dereferences an empty argument tuple for a function
  // spawned with none (UBSan: reference binding to null pointer).
  sys.spawn([](caf::event_based_actor* self, local::instance_plan plan, std::shared_ptr<local::run_state> run,
               std::shared_ptr<std::atomic<int>> done) {
    local::batch_pool pool;
    local::outbox out;
    out.wire(plan, run->actors, *run, pool);
    std::int64_t next = 0;
    auto turn = [&](std::size_t port, int n) {
      std::vector<value> vs;
      for (int i = 0; i < n; ++i) vs.emplace_back(next++);
      out.emit_run(port, vs);
    };
    // 20 busy turns of 64 values: across hosts one batch of 1024 after 16 turns, the rest held.
    for (int t = 0; t < 20; ++t) {
      turn(0, 64);
      out.flush(self, true);
    }
    out.flush(self, false);  // the producer has no more input: everything goes
    // A link with 100 credits never waits for more than it may send: it sends once it has 100.
    next = 0;
    turn(1, 60);
    out.flush(self, true);
    turn(1, 40);
    out.flush(self, true);
    *done = 1;
    return caf::behavior{[](int) {}};
  }, plan, run, done);
  REQUIRE(eventually([&] { return done->load() == 1; }));
  REQUIRE(eventually([&] { return far->count() == 1280 && near->count() == 1280 && narrow->count() == 100; }));
  CHECK(far->sizes == std::vector<std::size_t>{1024, 256});
  CHECK(near->sizes == std::vector<std::size_t>(20, 64));
  CHECK(narrow->sizes == std::vector<std::size_t>{100});
  for (auto* s : {far.get(), near.get(), narrow.get()})
    for (std::size_t i = 0; i < s->values.size(); ++i) CHECK(s->values[i] == static_cast<std::int64_t>(i));
  for (auto& a : run->actors)
    if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("a movable instance's link to another host gathers too, each value with its lineage tag" *
          doctest::timeout(60)) {
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  auto far = std::make_shared<seen>();
  local::instance_plan plan;
  plan.out_ports = {{local::out_edge_plan{{{1, 0, 4096}}, 0}}};
  auto run = std::make_shared<local::run_state>(2, 1);
  run->actors = {caf::actor{}, sys.spawn(recorder, far)};
  run->remote = {0, 1};
  auto done = std::make_shared<std::atomic<int>>(0);
  sys.spawn([](caf::event_based_actor* self, local::instance_plan plan, std::shared_ptr<local::run_state> run,
               std::shared_ptr<std::atomic<int>> done) {
    local::batch_pool pool;
    local::outbox out;
    out.wire(plan, run->actors, *run, pool);
    out.tag_lineage();
    std::int64_t next = 0;
    // 20 busy turns of 64 values, one at a time, each the output of input `next` on in-link 2.
    for (int t = 0; t < 20; ++t) {
      for (int i = 0; i < 64; ++i, ++next) {
        out.set_input(2, static_cast<std::uint64_t>(next));
        out.emit(0, value{next});
      }
      out.flush(self, true);
    }
    out.flush(self, false);
    *done = 1;
    return caf::behavior{[](int) {}};
  }, plan, run, done);
  REQUIRE(eventually([&] { return done->load() == 1; }));
  REQUIRE(eventually([&] { return far->count() == 1280; }));
  CHECK(far->sizes == std::vector<std::size_t>{1024, 256});
  REQUIRE(far->tags.size() == 1280);
  for (std::size_t i = 0; i < far->values.size(); ++i) {
    CHECK(far->values[i] == static_cast<std::int64_t>(i));
    CHECK(far->tags[i] == local::lineage{2, 0, i});
  }
  for (auto& a : run->actors)
    if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}
