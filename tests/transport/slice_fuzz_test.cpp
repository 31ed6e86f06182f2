// tests/transport/slice_fuzz_test.cpp: the fuzz_slice harness (tests/fuzz/live_slice.hpp) in the ordinary
// test run: valid frames reach a live node actor, frames naming links or credits the run does not have are
// refused at the boundary, and 20000 frames mutated from valid ones (fixed seed) go through the decoder and
// the boundary into the running slice without a crash.
#include <doctest/doctest.h>

#include <random>

#include "tests/fuzz/live_slice.hpp"

using namespace loom;
using namespace loom::transport;

namespace {

multipart frame(std::uint32_t from, std::uint32_t to, body b) { return encode(envelope{0, from, to, 0, std::move(b)}); }

std::vector<std::uint8_t> bytes_of(const multipart& parts) {
  auto& h = parts.at(0);
  auto* p = static_cast<const std::uint8_t*>(h.data());
  return {p, p + h.size()};
}

}  // namespace

TEST_CASE("frames into a live worker slice: valid ones reach the actor, broken ones stop at the boundary, "
          "mutated ones crash nothing" * doctest::timeout(120)) {
  fuzz::live_slice slice;
  // instance 0 = src (elsewhere), 1 = mid (here), 2 = out (elsewhere)
  CHECK(slice.feed(frame(0, 1, local::batch_msg{0, {value{1}, value{2}}})));
  CHECK(slice.feed(frame(2, 1, local::credit_msg{0, 1})));
  CHECK_FALSE(slice.feed(frame(0, 1, local::batch_msg{5, {value{1}}})));                     // no such link
  CHECK_FALSE(slice.feed(frame(0, 1, local::batch_msg{0, std::vector<value>(9, value{1})})));  // over capacity 8
  CHECK_FALSE(slice.feed(frame(2, 1, local::credit_msg{0, 9})));                              // over capacity
  CHECK_FALSE(slice.feed(frame(2, 1, local::credit_msg{3, 1})));                              // no such out-link
  CHECK_FALSE(slice.feed(frame(0, 1, local::call_msg{1, value{}})));                          // mid is no tool
  CHECK_FALSE(slice.feed(frame(1, 1, local::eos_msg{0})));                                    // 1 is not elsewhere
  CHECK_FALSE(slice.feed(frame(2, 1, local::batch_msg{0, {value{1}}})));                      // out feeds nothing

  std::vector<std::vector<std::uint8_t>> seeds = {
      bytes_of(frame(0, 1, local::batch_msg{0, {value{1}, value{"x"}, value{value_map{{"k", value{2.5}}}}}})),
      bytes_of(frame(2, 1, local::credit_msg{0, 4})),
      bytes_of(frame(0, 1, local::eos_msg{0})),
      bytes_of(frame(0, 1, local::reply_msg{3, false, value{}, "no"})),
  };
  std::mt19937 rng(20261129);
  std::size_t reached = 0;
  for (int i = 0; i < 20000; ++i) {
    auto b = seeds[rng() % seeds.size()];
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
    if (rng() % 8 == 0) b.resize(rng() % (b.size() + 1) / 8 * 8);
    multipart parts;
    parts.emplace_back(b.data(), b.size());
    reached += slice.feed(std::move(parts));
  }
  MESSAGE(reached, " of 20000 mutated frames passed the boundary; ", slice.runs(), " slices run");
  CHECK(slice.feed(frame(0, 1, local::batch_msg{0, {value{7}}})));  // still alive and serving
}
