// tests/fuzz/fuzz_wire.cpp: libFuzzer over the wire decoder. The input is split into a header part and up to
// three payload parts (byte 0 picks how many; each payload takes a 2-byte length), so the fuzzer reaches
// the payload references as well as the capnp header. Decoding must return a message or an error, never
// crash; a decoded message must encode again.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "loom/runtime/transport/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace loom::transport;
  if (size == 0) return 0;
  std::size_t payloads = data[0] % 4;
  ++data;
  --size;
  std::vector<std::pair<const std::uint8_t*, std::size_t>> tails;
  for (std::size_t i = 0; i < payloads && size >= 2; ++i) {
    std::size_t n = std::min<std::size_t>(std::size_t{data[0]} | std::size_t{data[1]} << 8, size - 2);
    tails.emplace_back(data + 2 + (size - 2 - n), n);  // payloads come from the end of the input
    size -= n + 2;
    data += 2;
  }
  // The header as zmq would hand it over: its own buffer, 8-byte aligned.
  multipart parts;
  parts.emplace_back(data, size);
  for (auto& [p, n] : tails) parts.emplace_back(p, n);
  auto d = decode(std::move(parts));
  if (d) {
    try {
      if (auto* e = std::get_if<envelope>(&*d.msg)) (void)encode(*e);
      else (void)encode(std::get<control_msg>(*d.msg));
    } catch (const encode_error&) {
    }
  }
  return 0;
}
