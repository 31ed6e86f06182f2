// tests/fuzz/fuzz_slice.cpp: libFuzzer over the receive boundary of a live worker slice (live_slice.hpp):
// the input is one frame (a header part; byte 0 says how many payload parts follow, as in fuzz_wire; with its
// top bit set, byte 0 picks a valid frame that the rest of the input is XORed over instead), decoded
// and, when it is an envelope, delivered through the run's rules into a running node actor. Nothing may
// crash, in the decoder, the boundary or the actor behind it.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/live_slice.hpp"

namespace {

using namespace loom;

// Valid frames of every envelope kind on the slice's real streams (src=0 -> mid=1, out=2 -> mid credits).
std::vector<std::vector<std::uint8_t>> templates() {
  std::vector<transport::body> bodies = {
      local::batch_msg{0, {value{1}, value{"text"}, value{value_map{{"k", value{2.5}}}}, value{value_list{}}}},
      local::credit_msg{0, 4}, local::eos_msg{0}, local::call_msg{1, value{}},
      local::reply_msg{1, false, value{}, "no"}, local::cancel_call_msg{1}};
  std::vector<std::vector<std::uint8_t>> out;
  for (std::uint32_t from : {0u, 2u})
    for (auto& b : bodies) {
      auto parts = transport::encode(transport::envelope{0, from, 1, 0, b});
      auto* p = static_cast<const std::uint8_t*>(parts[0].data());
      out.emplace_back(p, p + parts[0].size());
    }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Never destroyed: a CAF system torn down among the other statics at exit crashes in CAF itself.
  static auto* slice = new loom::fuzz::live_slice;
  static const auto valid = templates();
  if (size == 0) return 0;
  if (data[0] & 0x80) {  // a valid frame with the rest of the input XORed over it: past the decoder more often
    auto frame = valid[data[0] % valid.size()];
    for (std::size_t i = 1; i < size; ++i) frame[(i - 1) % frame.size()] ^= data[i];
    loom::transport::multipart parts;
    parts.emplace_back(frame.data(), frame.size());
    slice->feed(std::move(parts));
    return 0;
  }
  std::size_t payloads = data[0] % 3;
  ++data;
  --size;
  std::vector<std::pair<const std::uint8_t*, std::size_t>> tails;
  for (std::size_t i = 0; i < payloads && size >= 2; ++i) {
    std::size_t n = std::min<std::size_t>(std::size_t{data[0]} | std::size_t{data[1]} << 8, size - 2);
    tails.emplace_back(data + 2 + (size - 2 - n), n);
    size -= n + 2;
    data += 2;
  }
  loom::transport::multipart parts;
  parts.emplace_back(data, size);
  for (auto& [p, n] : tails) parts.emplace_back(p, n);
  slice->feed(std::move(parts));
  return 0;
}
