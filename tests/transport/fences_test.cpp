// tests/transport/fences_test.cpp: the fences of movable instances (transport::fences and credit_gate), with
// no socket: a credit waits for the acknowledgement of every data envelope its instance handed over before
// it to other peers, and names the data to its own peer for the receiver to hold it behind; what its stream
// sends behind a waiting credit waits behind it; other instances and runs are not held.
#include <doctest/doctest.h>

#include "loom/runtime/transport/credit_gate.hpp"
#include "loom/runtime/transport/fences.hpp"

#include <map>

using namespace loom;
using namespace loom::transport;

TEST_CASE("a credit waits until the data its instance sent before is acknowledged, in order per stream") {
  fences<int> f;
  stream_key out1{1, 5, 7}, out2{1, 5, 8}, back{1, 5, 2};  // instance 5's outputs, and its credits to 2
  int item = 0;
  CHECK_FALSE(f.hold(back, 2, true, std::nullopt, item));  // nothing sent yet: a credit goes at once
  item = 1;
  CHECK_FALSE(f.hold(out1, 1, false, 0, item));  // data goes at once, and is noted
  item = 2;
  CHECK_FALSE(f.hold(out1, 1, false, 1, item));
  item = 3;
  CHECK_FALSE(f.hold(out2, 1, false, 0, item));
  item = 10;
  CHECK(f.hold(back, 2, true, 0, item));  // waits for out1 < 2 and out2 < 1
  item = 11;
  CHECK(f.hold(back, 2, false, std::nullopt, item));  // behind it on its stream (an end of stream, say)
  item = 4;
  CHECK_FALSE(f.hold(out1, 1, false, 2, item));  // data after the credit does not hold the credit back
  CHECK(f.fenced() == 1);

  CHECK(f.acknowledged(out1, 1).empty());  // out1 only up to 0
  CHECK(f.acknowledged(out1, 2).empty());  // out1 done; out2 not yet
  CHECK(f.acknowledged(out1, 2).empty());  // a repeated ack changes nothing
  auto go = f.acknowledged(out2, 1);
  CHECK(go == std::vector<int>{10, 11});  // in order
  CHECK(f.acknowledged(out1, 3).empty());

  item = 12;  // a new credit waits for nothing unacknowledged: out1 < 3 was acknowledged
  CHECK_FALSE(f.hold(back, 2, true, 1, item));
}

TEST_CASE("fences hold only the instance that sent the data, and forget a run") {
  fences<int> f;
  stream_key a_out{1, 5, 7}, a_back{1, 5, 2}, b_back{1, 6, 2}, other{2, 5, 2};
  int item = 1;
  CHECK_FALSE(f.hold(a_out, 1, false, 0, item));
  item = 2;
  CHECK(f.hold(a_back, 2, true, 0, item));
  item = 3;
  CHECK_FALSE(f.hold(b_back, 2, true, 0, item));  // instance 6 sent nothing
  item = 4;
  CHECK_FALSE(f.hold(other, 2, true, 0, item));  // run 2's instance 5 sent nothing
  f.forget_run(1);
  CHECK(f.acknowledged(a_out, 1).empty());  // forgotten: nothing to release
  item = 5;
  CHECK_FALSE(f.hold(a_back, 2, true, 1, item));
}

TEST_CASE("a credit to the peer its data went to goes at once, naming the data it follows") {
  fences<int> f;
  // Instance 5 feeds 7 and 8 on peer 1 and 9 on peer 3; its producer 2 is on peer 1 too.
  stream_key to7{1, 5, 7}, to8{1, 5, 8}, to9{1, 5, 9}, back{1, 5, 2};
  int item = 0;
  CHECK_FALSE(f.hold(to7, 1, false, 0, item));
  CHECK_FALSE(f.hold(to7, 1, false, 1, item));
  CHECK_FALSE(f.hold(to8, 1, false, 0, item));
  CHECK(f.follows_to(back, 1) == std::vector<follows>{{7, 2}, {8, 1}});
  item = 10;
  CHECK_FALSE(f.hold(back, 1, true, 0, item));  // nothing out to another peer: it goes
  CHECK(f.fenced() == 0);
  // Acknowledged data is no longer named.
  CHECK(f.acknowledged(to7, 2).empty());
  CHECK(f.follows_to(back, 1) == std::vector<follows>{{8, 1}});
  // Data to peer 3 holds the next credit to peer 1 (until peer 3 acknowledges it), which still names 8.
  CHECK_FALSE(f.hold(to9, 3, false, 0, item));
  CHECK(f.follows_to(back, 1) == std::vector<follows>{{8, 1}});
  item = 11;
  CHECK(f.hold(back, 1, true, 1, item));
  CHECK(f.acknowledged(to9, 1) == std::vector<int>{11});
}

TEST_CASE("a received credit waits until the data it follows arrived, and what follows it on its stream waits too") {
  credit_gate<int> g;
  std::map<std::uint32_t, std::uint64_t> next;  // the next seq arrived on stream {1, 5, to}
  auto arrived = [&](const stream_key& k) {
    CHECK(k.run == 1);
    CHECK(k.from == 5);
    return next[k.to];
  };
  stream_key back{1, 5, 2};
  next[7] = 2;
  int item = 10;
  CHECK(g.hold(back, {{7, 2}}, item, arrived) == credit_gate<int>::verdict::deliver);  // its data is here
  CHECK(g.hold(back, {{7, 3}, {8, 1}}, item, arrived) == credit_gate<int>::verdict::wait);
  item = 11;
  CHECK(g.hold(back, {}, item, arrived) == credit_gate<int>::verdict::wait);  // behind it
  item = 12;
  stream_key other{1, 6, 2};
  CHECK(g.hold(other, {}, item, arrived) == credit_gate<int>::verdict::deliver);  // another stream goes
  CHECK(g.waiting() == 2);
  next[7] = 3;
  CHECK(g.ready(arrived).empty());  // 8 has not come
  next[8] = 1;
  CHECK(g.ready(arrived) == std::vector<int>{10, 11});
  CHECK(g.empty());
}

TEST_CASE("a gate forgets a moved sender's credits, and refuses past its bound") {
  credit_gate<int> g;
  auto nothing = [](const stream_key&) { return std::uint64_t{0}; };
  int item = 1;
  CHECK(g.hold(stream_key{1, 5, 2}, {{7, 1}}, item, nothing) == credit_gate<int>::verdict::wait);
  CHECK(g.hold(stream_key{1, 6, 2}, {{7, 1}}, item, nothing) == credit_gate<int>::verdict::wait);
  CHECK(g.hold(stream_key{2, 5, 2}, {{7, 1}}, item, nothing) == credit_gate<int>::verdict::wait);
  CHECK(g.forget(1, 5) == 1);  // instance 5 of run 1 moved
  CHECK(g.waiting() == 2);
  CHECK(g.forget(2) == 1);  // run 2 ended
  CHECK(g.waiting() == 1);
  for (std::size_t i = 1; i < credit_gate<int>::max_waiting; ++i)
    REQUIRE(g.hold(stream_key{1, 6, 2}, {}, item, nothing) == credit_gate<int>::verdict::wait);
  CHECK(g.hold(stream_key{1, 6, 2}, {}, item, nothing) == credit_gate<int>::verdict::refused);
}
