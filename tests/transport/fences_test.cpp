// tests/transport/fences_test.cpp: the fences of movable instances (transport::fences), with no socket: a
// credit waits for the acknowledgement of every data envelope its instance handed over before it, what its
// stream sends behind a waiting credit waits behind it, and other instances and runs are not held.
#include <doctest/doctest.h>

#include "loom/runtime/transport/fences.hpp"

using namespace loom;
using namespace loom::transport;

TEST_CASE("a credit waits until the data its instance sent before is acknowledged, in order per stream") {
  fences<int> f;
  stream_key out1{1, 5, 7}, out2{1, 5, 8}, back{1, 5, 2};  // instance 5's outputs, and its credits to 2
  int item = 0;
  CHECK_FALSE(f.hold(back, true, std::nullopt, item));  // nothing sent yet: a credit goes at once
  item = 1;
  CHECK_FALSE(f.hold(out1, false, 0, item));  // data goes at once, and is noted
  item = 2;
  CHECK_FALSE(f.hold(out1, false, 1, item));
  item = 3;
  CHECK_FALSE(f.hold(out2, false, 0, item));
  item = 10;
  CHECK(f.hold(back, true, 0, item));  // waits for out1 < 2 and out2 < 1
  item = 11;
  CHECK(f.hold(back, false, std::nullopt, item));  // behind it on its stream (an end of stream, say)
  item = 4;
  CHECK_FALSE(f.hold(out1, false, 2, item));  // data after the credit does not hold the credit back
  CHECK(f.fenced() == 1);

  CHECK(f.acknowledged(out1, 1).empty());  // out1 only up to 0
  CHECK(f.acknowledged(out1, 2).empty());  // out1 done; out2 not yet
  CHECK(f.acknowledged(out1, 2).empty());  // a repeated ack changes nothing
  auto go = f.acknowledged(out2, 1);
  CHECK(go == std::vector<int>{10, 11});  // in order
  CHECK(f.acknowledged(out1, 3).empty());

  item = 12;  // a new credit waits for nothing unacknowledged: out1 < 3 was acknowledged
  CHECK_FALSE(f.hold(back, true, 1, item));
}

TEST_CASE("fences hold only the instance that sent the data, and forget a run") {
  fences<int> f;
  stream_key a_out{1, 5, 7}, a_back{1, 5, 2}, b_back{1, 6, 2}, other{2, 5, 2};
  int item = 1;
  CHECK_FALSE(f.hold(a_out, false, 0, item));
  item = 2;
  CHECK(f.hold(a_back, true, 0, item));
  item = 3;
  CHECK_FALSE(f.hold(b_back, true, 0, item));  // instance 6 sent nothing
  item = 4;
  CHECK_FALSE(f.hold(other, true, 0, item));  // run 2's instance 5 sent nothing
  f.forget_run(1);
  CHECK(f.acknowledged(a_out, 1).empty());  // forgotten: nothing to release
  item = 5;
  CHECK_FALSE(f.hold(a_back, true, 1, item));
}
