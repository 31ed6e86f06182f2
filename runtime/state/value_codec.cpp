// runtime/state/value_codec.cpp: the blob format of value_codec.hpp on loom.capnp's Value. The value itself is
// written and read by the one writer and reader of runtime/wire/value_capnp.hpp (the wire's too); this file
// gives them the state file's side: every payload inline, its exceptions and its wording.
#include "loom/runtime/state/value_codec.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/exception.h>

#include <cstring>

#include "loom/runtime/state/crc32c.hpp"
#include "loom/runtime/wire/value_capnp.hpp"

namespace loom::state {

namespace {

namespace s = wire::schema;

constexpr std::byte magic0{'L'}, magic1{'V'}, format1{1};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw decode_error(fmt::format(f, std::forward<Args>(args)...));
}

// The state file's lines (tests/state and docs/durability.md name them).
constexpr wire::wording state_words{
    .too_deep = "a value nested deeper than {} lists and maps",
    .too_long = "a {} of {} elements is too long (at most {})",
    .too_large = "a {} of {} bytes is too large (at most {})",
    .on_device = "a tensor on device {} cannot be kept in a state file; copy it to the host first",
    .dimensions = "a tensor of {} dimensions (at most {})",
    .negative = "a tensor dimension of {}",
    .overflow = "a tensor shape that overflows 64 bits",
    .data_size = "a tensor {} of shape [{}] needs {} bytes of data, has {}",
};

// Writing: every payload inline.
struct blob_sink {
  static constexpr const wire::wording& words = state_words;
  [[noreturn]] static void refuse(std::string line) { throw encode_error(std::move(line)); }

  static void put_inline(s::Payload::Builder b, const std::byte* p, std::size_t n) {
    if (n > wire::max_elements)
      refuse(fmt::format("a payload of {} bytes is too large (at most {})", n, wire::max_elements));
    b.setInline(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(p), n));
  }
  void bytes(s::Payload::Builder b, const value& v) { put_inline(b, v.as_bytes().data(), v.as_bytes().size()); }
  void tensor_data(s::Payload::Builder b, const tensor& t) { put_inline(b, t.data()->data(), t.nbytes()); }
};

// Reading: a payload part is refused, since a state file never has one.
struct blob_source {
  static constexpr const wire::wording& words = state_words;
  [[noreturn]] static void reject(std::string line) { throw decode_error(std::move(line)); }

  static capnp::Data::Reader inline_data(s::Payload::Reader p, const char* what) {
    if (p.which() != s::Payload::INLINE) fail("{} refer to a payload part, which a state file never has", what);
    return p.getInline();
  }
  value bytes(s::Payload::Reader p) { return wire::inline_bytes(inline_data(p, "bytes")); }
  template <class Check>
  std::shared_ptr<const storage> tensor_data(s::Payload::Reader p, Check check) {
    return wire::inline_storage(inline_data(p, "tensor data"), check);
  }
};

blob finish(capnp::MallocMessageBuilder& builder) {
  auto words = capnp::messageToFlatArray(builder);
  auto body = words.asBytes();
  if (body.size() + blob_header_bytes > max_blob_bytes)
    throw encode_error(fmt::format("a value of {} bytes encoded is too large for a state file (at most {})",
                                   body.size(), max_blob_bytes - blob_header_bytes));
  blob out(blob_header_bytes + body.size());
  out[0] = magic0;
  out[1] = magic1;
  out[2] = format1;
  out[3] = std::byte{0};
  std::uint32_t crc = crc32c(body.begin(), body.size());
  for (int i = 0; i < 4; ++i) out[4 + static_cast<std::size_t>(i)] = static_cast<std::byte>(crc >> (8 * i));
  std::memcpy(out.data() + blob_header_bytes, body.begin(), body.size());
  return out;
}

}  // namespace

blob encode(const value& v) {
  capnp::MallocMessageBuilder builder;
  blob_sink sink;
  wire::write(builder.initRoot<s::Value>(), v, sink);
  return finish(builder);
}

blob encode_list(std::span<const value> values) {
  capnp::MallocMessageBuilder builder;
  blob_sink sink;
  auto lb = builder.initRoot<s::Value>().initList(wire::checked_count<blob_sink>(values.size(), "list"));
  for (std::size_t i = 0; i < values.size(); ++i) wire::write(lb[static_cast<unsigned>(i)], values[i], sink, 1);
  return finish(builder);
}

value decode(std::span<const std::byte> bytes) {
  if (bytes.size() < blob_header_bytes)
    fail("{} bytes, shorter than a blob's {}-byte header", bytes.size(), blob_header_bytes);
  if (bytes[0] != magic0 || bytes[1] != magic1)
    fail("no value blob (it starts with {:#04x} {:#04x}, not \"LV\")", static_cast<unsigned>(bytes[0]),
         static_cast<unsigned>(bytes[1]));
  if (bytes[2] != format1 || bytes[3] != std::byte{0})
    fail("a value blob of format {}.{} (this loom reads format 1.0)", static_cast<unsigned>(bytes[2]),
         static_cast<unsigned>(bytes[3]));
  if (bytes.size() > max_blob_bytes) fail("a blob of {} bytes (at most {})", bytes.size(), max_blob_bytes);
  auto body = bytes.subspan(blob_header_bytes);
  std::uint32_t want = 0;
  for (int i = 0; i < 4; ++i) want |= static_cast<std::uint32_t>(bytes[4 + static_cast<std::size_t>(i)]) << (8 * i);
  std::uint32_t have = crc32c(body.data(), body.size());
  if (have != want) fail("checksum mismatch (CRC-32C {:08x}, the blob says {:08x})", have, want);
  if (body.empty() || body.size() % sizeof(capnp::word) != 0)
    fail("a body of {} bytes, not a whole number of 8-byte words", body.size());
  // A copy into words: SQLite gives a blob at any alignment, and Cap'n Proto reads whole words.
  auto words = kj::heapArray<capnp::word>(body.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), body.data(), body.size());
  try {
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = 2 * words.size() + 64;
    opts.nestingLimit = 2 * max_depth + 8;  // a value level is two pointers deep
    capnp::FlatArrayMessageReader msg(words.asPtr(), opts);
    if (msg.getEnd() != words.end()) fail("{} bytes after the message", (words.end() - msg.getEnd()) * sizeof(capnp::word));
    blob_source source;
    return wire::read(msg.getRoot<s::Value>(), source);
  } catch (const kj::Exception& e) {
    fail("a malformed message: {}", e.getDescription().cStr());
  } catch (const decode_error&) {
    throw;
  } catch (const std::exception& e) {  // std::bad_alloc, or a tensor the constructor refuses
    fail("a malformed value: {}", e.what());
  }
}

value_list decode_list(std::span<const std::byte> bytes) {
  auto v = decode(bytes);
  if (!v.is_list()) fail("a value of type {} where a list of values belongs", v.type_name());
  return v.as_list();
}

}  // namespace loom::state
