// tests/fuzz/fuzz_slice.cpp: libFuzzer over the receive boundary of a live worker slice (live_slice.hpp):
// the input is one frame (a header part; byte 0 says how many payload parts follow, as in fuzz_wire), decoded
// and, when it is an envelope, delivered through the run's rules into a running node actor. Nothing may
// crash, in the decoder, the boundary or the actor behind it.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/live_slice.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Never destroyed: a CAF system torn down among the other statics at exit crashes in CAF itself.
  static auto* slice = new loom::fuzz::live_slice;
  if (size == 0) return 0;
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
