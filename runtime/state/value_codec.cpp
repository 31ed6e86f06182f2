// runtime/state/value_codec.cpp: the blob format of value_codec.hpp on loom.capnp's Value.
#include "loom/runtime/state/value_codec.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <kj/exception.h>

#include <cstring>
#include <limits>
#include <memory>

#include "loom/runtime/state/crc32c.hpp"
#include "loom/runtime/transport/loom.capnp.h"

namespace loom::state {

namespace {

namespace s = transport::schema;

constexpr std::byte magic0{'L'}, magic1{'V'}, format1{1};
constexpr unsigned max_list = (1u << 29) - 1;  // Cap'n Proto's longest list

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw decode_error(fmt::format(f, std::forward<Args>(args)...));
}

unsigned checked_count(std::size_t n, const char* what) {
  if (n > max_list) throw encode_error(fmt::format("a {} of {} elements is too long (at most {})", what, n, max_list));
  return static_cast<unsigned>(n);
}

capnp::Data::Reader data_of(const std::byte* p, std::size_t n) {
  if (n > max_list) throw encode_error(fmt::format("a payload of {} bytes is too large (at most {})", n, max_list));
  return {reinterpret_cast<const kj::byte*>(p), n};
}

void put(s::Value::Builder b, const value& v, int depth) {
  if (depth > max_depth) throw encode_error(fmt::format("a value nested deeper than {} lists and maps", max_depth));
  switch (v.kind()) {
    case value::type::null: b.setNull(); break;
    case value::type::boolean: b.setBool(v.as_bool()); break;
    case value::type::integer: b.setInt(v.as_int()); break;
    case value::type::floating: b.setFloat(v.as_float()); break;
    case value::type::string: {
      const auto& str = v.as_string();
      if (str.size() > max_list)
        throw encode_error(fmt::format("a string of {} bytes is too large (at most {})", str.size(), max_list));
      b.setString(capnp::Text::Reader(str.data(), str.size()));
      break;
    }
    case value::type::bytes: {
      const auto& by = v.as_bytes();
      b.initBytes().setInline(data_of(by.data(), by.size()));
      break;
    }
    case value::type::list: {
      const auto& l = v.as_list();
      auto lb = b.initList(checked_count(l.size(), "list"));
      for (std::size_t i = 0; i < l.size(); ++i) put(lb[static_cast<unsigned>(i)], l[i], depth + 1);
      break;
    }
    case value::type::map: {
      const auto& m = v.as_map();
      auto mb = b.initMap(checked_count(m.size(), "map"));
      for (std::size_t i = 0; i < m.size(); ++i) {
        auto e = mb[static_cast<unsigned>(i)];
        const auto& k = m[i].first;
        if (k.size() > max_list)
          throw encode_error(fmt::format("a map key of {} bytes is too large (at most {})", k.size(), max_list));
        e.setKey(capnp::Text::Reader(k.data(), k.size()));
        put(e.initValue(), m[i].second, depth + 1);
      }
      break;
    }
    case value::type::tensor: {
      const auto& t = v.as_tensor();
      if (t.device() >= 0)
        throw encode_error(fmt::format(
            "a tensor on device {} cannot be kept in a state file; copy it to the host first", t.device()));
      auto tb = b.initTensor();
      tb.setDtype(static_cast<s::DType>(static_cast<std::uint16_t>(t.type())));
      auto sh = tb.initShape(checked_count(t.shape().size(), "tensor shape"));
      for (std::size_t i = 0; i < t.shape().size(); ++i) sh.set(static_cast<unsigned>(i), t.shape()[i]);
      tb.initData().setInline(data_of(t.data()->data(), t.nbytes()));
      break;
    }
  }
}

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

// Reads a decoded (checked) Value.
class reader {
 public:
  value get(s::Value::Reader r, int depth) {
    if (depth > max_depth) fail("a value nested deeper than {} lists and maps", max_depth);
    switch (r.which()) {
      case s::Value::NULL_: return {};
      case s::Value::BOOL: return r.getBool();
      case s::Value::INT: return r.getInt();
      case s::Value::FLOAT: return r.getFloat();
      case s::Value::STRING: {
        auto t = r.getString();
        return std::string(t.begin(), t.size());
      }
      case s::Value::BYTES: {
        auto d = inline_data(r.getBytes(), "bytes");
        return loom::bytes(d.first, d.first + d.second);
      }
      case s::Value::LIST: {
        auto l = r.getList();
        value_list out;
        out.reserve(l.size());
        for (auto e : l) out.push_back(get(e, depth + 1));
        return out;
      }
      case s::Value::MAP: {
        auto m = r.getMap();
        value_map out;
        out.reserve(m.size());
        for (auto e : m) {
          auto k = e.getKey();
          out.emplace_back(std::string(k.begin(), k.size()), get(e.getValue(), depth + 1));
        }
        return out;
      }
      case s::Value::TENSOR: return tensor_of(r.getTensor());
    }
    fail("unknown value tag {}", static_cast<unsigned>(r.which()));
  }

 private:
  static std::pair<const std::byte*, std::size_t> inline_data(s::Payload::Reader p, const char* what) {
    if (p.which() != s::Payload::INLINE)
      fail("{} refer to a payload part, which a state file never has", what);
    auto d = p.getInline();
    return {reinterpret_cast<const std::byte*>(d.begin()), d.size()};
  }

  static value tensor_of(s::Tensor::Reader t) {
    auto raw = static_cast<std::uint16_t>(t.getDtype());
    if (raw > static_cast<std::uint16_t>(dtype::u8)) fail("unknown tensor dtype {}", raw);
    auto dt = static_cast<dtype>(raw);
    auto sh = t.getShape();
    if (sh.size() > 64) fail("a tensor of {} dimensions (at most 64)", sh.size());
    std::vector<std::int64_t> shape;
    shape.reserve(sh.size());
    std::uint64_t elements = 1;
    for (auto d : sh) {
      if (d < 0) fail("a tensor dimension of {}", d);
      if (__builtin_mul_overflow(elements, static_cast<std::uint64_t>(d), &elements))
        fail("a tensor shape that overflows 64 bits");
      shape.push_back(d);
    }
    std::uint64_t nbytes = 0;
    if (__builtin_mul_overflow(elements, std::uint64_t{dtype_size(dt)}, &nbytes) ||
        elements > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      fail("a tensor shape that overflows 64 bits");
    auto [p, n] = inline_data(t.getData(), "tensor data");
    if (n != nbytes)
      fail("a tensor {} of shape [{}] needs {} bytes of data, has {}", dtype_name(dt), fmt::join(shape, ","), nbytes, n);
    return tensor(dt, std::move(shape), std::make_shared<host_storage>(std::vector<std::byte>(p, p + n)));
  }
};

}  // namespace

blob encode(const value& v) {
  capnp::MallocMessageBuilder builder;
  put(builder.initRoot<s::Value>(), v, 0);
  return finish(builder);
}

blob encode_list(std::span<const value> values) {
  capnp::MallocMessageBuilder builder;
  auto lb = builder.initRoot<s::Value>().initList(checked_count(values.size(), "list"));
  for (std::size_t i = 0; i < values.size(); ++i) put(lb[static_cast<unsigned>(i)], values[i], 1);
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
    return reader{}.get(msg.getRoot<s::Value>(), 0);
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
