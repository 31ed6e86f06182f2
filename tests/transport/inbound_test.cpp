// tests/transport/inbound_test.cpp: the receiving half of the reliable stream rule (inbound_streams), with
// no socket: in-order delivery, repeats dropped, a gap held until the resends fill it or reported once past
// its timeout, acks riding on credits, separate acks by count and by tick (or at once for an urgent
// envelope), and forgetting a run or a sender.
#include <doctest/doctest.h>

#include "loom/runtime/transport/inbound.hpp"

using namespace loom;
using namespace loom::transport;
using namespace std::chrono_literals;
using verdict = inbound_streams::verdict;

TEST_CASE("each stream delivers the next seq, drops repeats and holds nothing past a gap") {
  inbound_streams in;
  stream_key s{1, 2, 3}, t{1, 4, 3};
  CHECK(in.arrived(s, 0, "a", true) == verdict::deliver);
  CHECK(in.arrived(s, 1, "a", true) == verdict::deliver);
  CHECK(in.arrived(s, 1, "a", true) == verdict::repeat);  // a resend after a reconnect
  CHECK(in.arrived(s, 0, "a", true) == verdict::repeat);
  CHECK(in.arrived(t, 0, "b", false) == verdict::deliver);  // streams are independent
  CHECK_FALSE(in.has_gaps());
  CHECK(in.arrived(s, 4, "a", true) == verdict::ahead);  // 2 and 3 missing
  CHECK(in.arrived(s, 5, "a", true) == verdict::ahead);
  CHECK(in.has_gaps());
  CHECK(in.arrived(s, 2, "a", true) == verdict::deliver);  // the resends come in order
  CHECK(in.arrived(s, 3, "a", true) == verdict::deliver);
  CHECK_FALSE(in.has_gaps());
  CHECK(in.arrived(s, 4, "a", true) == verdict::deliver);  // and what followed comes again behind them
}

TEST_CASE("a gap not filled within its timeout is reported once, naming the stream and the numbers") {
  inbound_streams in;
  stream_key s{7, 0, 1};
  CHECK(in.arrived(s, 0, "a", true) == verdict::deliver);
  CHECK(in.arrived(s, 3, "a", true) == verdict::ahead);
  CHECK(in.arrived(s, 5, "a", true) == verdict::ahead);
  auto now = inbound_streams::clock::now();
  CHECK(in.overdue_gaps(now - 1s, 5000ms).empty());  // not old enough
  auto late = in.overdue_gaps(now + 6s, 5000ms);
  REQUIRE(late.size() == 1);
  CHECK(late[0].what == problem::kind::sequence);
  CHECK(late[0].stream == s);
  CHECK(late[0].expected == 1);
  CHECK(late[0].actual == 5);
  CHECK(late[0].text == "run 7 stream 0->1 from a: expected seq 1, got up to 5: 4 message(s) lost (not resent within 5000 ms)");
  CHECK(in.overdue_gaps(now + 7s, 5000ms).empty());  // once
}

TEST_CASE("acks ride on credits; a stream without one gets a separate ack by count or at the next tick") {
  inbound_streams in;
  stream_key s{1, 0, 1}, u{1, 2, 1}, plain{1, 3, 1};
  auto t0 = inbound_streams::clock::now();
  CHECK(in.due_acks(false, t0).empty());  // nothing arrived: the first tick starts the clock
  for (std::uint64_t i = 0; i < 3; ++i) CHECK(in.arrived(s, i, "a", true) == verdict::deliver);
  CHECK(in.arrived(plain, 0, "c", false) == verdict::deliver);  // on a socket we opened: never acked
  CHECK(in.piggyback(s) == 3);  // a credit going back carries it
  CHECK(in.piggyback(s) == 0);  // nothing new since
  CHECK(in.piggyback(plain) == 0);
  CHECK(in.due_acks(false, t0 + 11ms).empty());  // acked on the credit: drops out

  // No credit goes back: marked at one tick, sent at the next.
  CHECK(in.arrived(u, 0, "b", true) == verdict::deliver);
  CHECK(in.due_acks(false, t0 + 22ms).empty());
  CHECK(in.due_acks(false, t0 + 25ms).empty());  // before the next tick
  auto acks = in.due_acks(false, t0 + 33ms);
  REQUIRE(acks.size() == 1);
  REQUIRE(acks["b"].streams.size() == 1);
  CHECK(acks["b"].streams[0].stream == u);
  CHECK(acks["b"].streams[0].next == 1);

  // ack_every envelopes make one due at once, between ticks.
  for (std::uint64_t i = 3; i < 3 + inbound_streams::ack_every; ++i) CHECK(in.arrived(s, i, "a", true) == verdict::deliver);
  auto now = in.due_acks(false, t0 + 34ms);
  REQUIRE(now.size() == 1);
  CHECK(now["a"].streams[0].next == 3 + inbound_streams::ack_every);
  CHECK_FALSE(in.acks_pending());

  // Closing: every ack due goes.
  CHECK(in.arrived(u, 1, "b", true) == verdict::deliver);
  auto all = in.due_acks(true, t0 + 35ms);
  REQUIRE(all.size() == 1);
  CHECK(all["b"].streams[0].next == 2);
}

TEST_CASE("an urgent envelope (a movable instance's output) makes its stream's ack due at once") {
  inbound_streams in;
  stream_key s{1, 0, 1}, u{1, 2, 1};
  auto t0 = inbound_streams::clock::now();
  CHECK(in.due_acks(false, t0).empty());  // the first tick starts the clock
  CHECK(in.arrived(s, 0, "a", true) == verdict::deliver);
  CHECK(in.due_acks(false, t0 + 1ms).empty());  // an ordinary one waits for a credit or the ticks
  CHECK(in.arrived(u, 0, "b", true, true) == verdict::deliver);
  auto acks = in.due_acks(false, t0 + 2ms);  // between ticks
  REQUIRE(acks.size() == 1);
  REQUIRE(acks["b"].streams.size() == 1);
  CHECK(acks["b"].streams[0].stream == u);
  CHECK(acks["b"].streams[0].next == 1);
  // Once acked it is ordinary again; a credit going back takes an urgent ack first.
  CHECK(in.arrived(u, 1, "b", true) == verdict::deliver);
  CHECK(in.due_acks(false, t0 + 3ms).empty());
  CHECK(in.arrived(u, 2, "b", true, true) == verdict::deliver);
  CHECK(in.piggyback(u) == 3);
  CHECK(in.due_acks(false, t0 + 4ms).empty());
}

TEST_CASE("forgetting a run, or one sender of it, starts its streams from 0 again") {
  inbound_streams in;
  stream_key a{1, 0, 1}, b{1, 2, 1}, other{2, 0, 1};
  for (auto k : {a, b, other}) {
    CHECK(in.arrived(k, 0, "x", true) == verdict::deliver);
    CHECK(in.arrived(k, 2, "x", true) == verdict::ahead);
  }
  in.forget(1, 0);  // instance 0 of run 1 moved: it numbers from 0 again
  CHECK(in.arrived(a, 0, "x", true) == verdict::deliver);
  CHECK(in.arrived(b, 0, "x", true) == verdict::repeat);
  in.forget(1);
  CHECK(in.arrived(b, 0, "x", true) == verdict::deliver);
  CHECK(in.arrived(other, 0, "x", true) == verdict::repeat);  // another run keeps its state
  CHECK(in.has_gaps());  // other's gap
  in.forget(2);
  CHECK_FALSE(in.has_gaps());
}
