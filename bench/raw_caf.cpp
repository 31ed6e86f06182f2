// bench/raw_caf.cpp: the baseline: the same 4-stage pipeline written directly in CAF, one CAF message per
// value, no flow control (CAF 0.17 mailboxes are unbounded), the way one writes it without loom.
#include <chrono>
#include <thread>

#include "bench/bench.hpp"

namespace loom::bench {
namespace {

using clock = std::chrono::steady_clock;
using done_atom = caf::atom_constant<caf::atom("done")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch()).count();
}

caf::behavior stage(caf::event_based_actor*, caf::actor next) {
  return {[=](std::int64_t x) { caf::anon_send(next, x); }};
}

}  // namespace

throughput raw_caf_pipeline_throughput(caf::actor_system& sys, std::int64_t n) {
  caf::scoped_actor self{sys};
  caf::actor waiter = self;
  auto sink = sys.spawn([=](caf::event_based_actor*) -> caf::behavior {
    auto count = std::make_shared<std::int64_t>(0);
    return {[=](std::int64_t) {
      if (++*count == n) caf::anon_send(waiter, done_atom::value);
    }};
  });
  auto b = sys.spawn(stage, sink);
  auto a = sys.spawn(stage, b);
  auto t0 = clock::now();
  auto src = sys.spawn([=](caf::event_based_actor* s) -> caf::behavior {
    // Sends in slices so the source does not hold a scheduler thread for the whole run.
    auto next = std::make_shared<std::int64_t>(0);
    s->send(s, tick_atom::value);
    return {[=](tick_atom) {
      for (int k = 0; k < 1024 && *next < n; ++k) s->send(a, (*next)++);
      if (*next < n) s->send(s, tick_atom::value);
    }};
  });
  self->receive([](done_atom) {});
  throughput r{static_cast<std::uint64_t>(n), std::chrono::duration<double>(clock::now() - t0).count()};
  for (auto& x : {src, a, b, sink}) caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
  return r;
}

// The strongest baseline: the same chain passing std::vector<int64_t> batches of 64 per CAF message; each
// stage touches every value (as loom's forward does) into a fresh batch for the next. No flow control.
throughput raw_caf_batched_pipeline_throughput(caf::actor_system& sys, std::int64_t n) {
  using batch = std::vector<std::int64_t>;
  constexpr std::size_t per_message = 64;
  caf::scoped_actor self{sys};
  caf::actor waiter = self;
  auto sink = sys.spawn([=](caf::event_based_actor*) -> caf::behavior {
    auto count = std::make_shared<std::int64_t>(0);
    return {[=](const batch& b) {
      *count += static_cast<std::int64_t>(b.size());
      if (*count == n) caf::anon_send(waiter, done_atom::value);
    }};
  });
  auto stage_of = [&](caf::actor next) {
    return sys.spawn([=](caf::event_based_actor*) -> caf::behavior {
      return {[=](const batch& in) {
        batch out;
        out.reserve(in.size());
        for (auto x : in) out.push_back(x);
        caf::anon_send(next, std::move(out));
      }};
    });
  };
  auto b = stage_of(sink);
  auto a = stage_of(b);
  auto t0 = clock::now();
  auto src = sys.spawn([=](caf::event_based_actor* s) -> caf::behavior {
    auto next = std::make_shared<std::int64_t>(0);
    s->send(s, tick_atom::value);
    return {[=](tick_atom) {
      for (int k = 0; k < 16 && *next < n; ++k) {
        batch out;
        out.reserve(per_message);
        for (std::size_t i = 0; i < per_message && *next < n; ++i) out.push_back((*next)++);
        s->send(a, std::move(out));
      }
      if (*next < n) s->send(s, tick_atom::value);
    }};
  });
  self->receive([](done_atom) {});
  throughput r{static_cast<std::uint64_t>(n), std::chrono::duration<double>(clock::now() - t0).count()};
  for (auto& x : {src, a, b, sink}) caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
  return r;
}

latency raw_caf_pipeline_latency(caf::actor_system& sys, std::int64_t n, int interval_us) {
  caf::scoped_actor self{sys};
  caf::actor waiter = self;
  auto samples = std::make_shared<std::vector<std::int64_t>>();
  samples->reserve(static_cast<std::size_t>(n));
  auto sink = sys.spawn([=](caf::event_based_actor*) -> caf::behavior {
    return {[=](std::int64_t sent) {
      samples->push_back(now_ns() - sent);
      if (static_cast<std::int64_t>(samples->size()) == n) caf::anon_send(waiter, done_atom::value);
    }};
  });
  auto b = sys.spawn(stage, sink);
  auto a = sys.spawn(stage, b);
  auto src = sys.spawn([=](caf::event_based_actor* s) -> caf::behavior {
    auto sent = std::make_shared<std::int64_t>(0);
    s->send(s, tick_atom::value);
    return {[=](tick_atom) {
      s->send(a, now_ns());
      if (++*sent < n) s->delayed_send(s, std::chrono::microseconds(interval_us), tick_atom::value);
    }};
  });
  self->receive([](done_atom) {});
  for (auto& x : {src, a, b, sink}) caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
  return summarize(*samples, 3);
}

}  // namespace loom::bench
