// runtime/wire/value_capnp.hpp: the one writer and the one reader of loom values as loom.capnp's `Value`
// (runtime/transport/loom.capnp). Two formats are built on that struct and both use these: the wire's frames
// (runtime/transport/codec.cpp, docs/wire.md) and the state file's value blobs (runtime/state/value_codec.cpp,
// docs/durability.md). Both keep the limits of limits.hpp and check every value read the same way (depth,
// union tags, dtype, a tensor's dimensions, 64-bit overflow of its size, data exactly that size). What
// differs is the codec's to say, through the class it passes (the "sink" when writing, the "source" when
// reading):
//   - where a bytes value and a tensor's data go and come from (inline in the message; on the wire a large
//     one is a ZeroMQ part of its own);
//   - the exception it throws, and the wording of its lines (`wording`: the two formats word them apart,
//     and their tests and docs name both).
// Header only and templated on that class, so the wire's hot path calls no function it did not call before.
// Needs loom_core and the schema library (loom_wire_schema: Cap'n Proto); no CAF, no ZeroMQ.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loom/runtime/tensor.hpp"
#include "loom/runtime/transport/loom.capnp.h"
#include "loom/runtime/value.hpp"
#include "loom/runtime/wire/limits.hpp"

namespace loom::wire {

namespace schema = transport::schema;

// A codec's lines for what the writer and the reader refuse. Each is checked at compile time against the
// arguments named after it, given in that order; a line may leave some out, or take them by position ("{1}").
struct wording {
  // Both ways: max_depth.
  fmt::format_string<int> too_deep;
  // Writing. A list, map or tensor shape longer than max_elements: "list", "map" or "tensor shape", its
  // length, max_elements.
  fmt::format_string<std::string_view, std::size_t, std::size_t> too_long;
  // A string or map key longer than max_elements: "string" or "map key", its bytes, max_elements.
  fmt::format_string<std::string_view, std::size_t, std::size_t> too_large;
  // A tensor not in host memory: its device.
  fmt::format_string<int> on_device;
  // Reading a tensor. More than max_dimensions: its dimensions, max_dimensions.
  fmt::format_string<std::size_t, std::size_t> dimensions;
  // A dimension below 0: the dimension.
  fmt::format_string<std::int64_t> negative;
  // Elements or bytes past 64 bits.
  fmt::format_string<> overflow;
  // Data that is not the shape's size: the dtype's name, the shape ("2,3"), the bytes it needs, those it has.
  fmt::format_string<std::string_view, std::string_view, std::uint64_t, std::size_t> data_size;
};

// One of a wording's lines with its arguments (only ever on the way to an error).
template <class... Args>
std::string line(fmt::string_view format, const Args&... args) {
  return fmt::vformat(format, fmt::make_format_args(args...));
}

// ---------------------------------------------------------------------------------------------- writing
//
// The codec's side, Sink:
//   static constexpr const wording& words;                           its lines (a wording, or a reference to one)
//   [[noreturn]] static void refuse(std::string line);               throws the codec's encode error
//   void bytes(schema::Payload::Builder b, const value& v);          v's bytes into b
//   void tensor_data(schema::Payload::Builder b, const tensor& t);   a host tensor's data into b

// n as a Cap'n Proto list length, or the codec's refusal of a `what` (list, map, tensor shape) that long.
template <class Sink>
unsigned checked_count(std::size_t n, std::string_view what) {
  if (n > max_elements) Sink::refuse(line(Sink::words.too_long, what, n, max_elements));
  return static_cast<unsigned>(n);
}

template <class Sink>
capnp::Text::Reader checked_text(const std::string& s, std::string_view what) {
  if (s.size() > max_elements) Sink::refuse(line(Sink::words.too_large, what, s.size(), max_elements));
  return {s.data(), s.size()};
}

// Writes v into b; depth: how many lists and maps already hold it.
template <class Sink>
void write(schema::Value::Builder b, const value& v, Sink& sink, int depth = 0) {
  if (depth > max_depth) Sink::refuse(line(Sink::words.too_deep, max_depth));
  switch (v.kind()) {
    case value::type::null: b.setNull(); break;
    case value::type::boolean: b.setBool(v.as_bool()); break;
    case value::type::integer: b.setInt(v.as_int()); break;
    case value::type::floating: b.setFloat(v.as_float()); break;
    case value::type::string: b.setString(checked_text<Sink>(v.as_string(), "string")); break;
    case value::type::bytes: sink.bytes(b.initBytes(), v); break;
    case value::type::list: {
      const auto& l = v.as_list();
      auto lb = b.initList(checked_count<Sink>(l.size(), "list"));
      for (std::size_t i = 0; i < l.size(); ++i) write(lb[static_cast<unsigned>(i)], l[i], sink, depth + 1);
      break;
    }
    case value::type::map: {
      const auto& m = v.as_map();
      auto mb = b.initMap(checked_count<Sink>(m.size(), "map"));
      for (std::size_t i = 0; i < m.size(); ++i) {
        auto e = mb[static_cast<unsigned>(i)];
        e.setKey(checked_text<Sink>(m[i].first, "map key"));
        write(e.initValue(), m[i].second, sink, depth + 1);
      }
      break;
    }
    case value::type::tensor: {
      const auto& t = v.as_tensor();
      if (t.device() >= 0) Sink::refuse(line(Sink::words.on_device, t.device()));
      auto tb = b.initTensor();
      tb.setDtype(static_cast<schema::DType>(static_cast<std::uint16_t>(t.type())));
      auto sh = tb.initShape(checked_count<Sink>(t.shape().size(), "tensor shape"));
      for (std::size_t i = 0; i < t.shape().size(); ++i) sh.set(static_cast<unsigned>(i), t.shape()[i]);
      sink.tensor_data(tb.initData(), t);
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------- reading
//
// The codec's side, Source:
//   static constexpr const wording& words;                           its lines (a wording, or a reference to one)
//   [[noreturn]] static void reject(std::string line);   throws the codec's decode error
//   value bytes(schema::Payload::Reader p);              a bytes value from p
//   template <class Check>
//   std::shared_ptr<const storage> tensor_data(schema::Payload::Reader p, Check check);
//                                                        a tensor's data from p; check(n) rejects n bytes
//                                                        that are not the shape's size: call it first
// The message was read by Cap'n Proto with its traversal and nesting limits; this checks the rest.

// Payload.inline as a bytes value (a copy).
inline value inline_bytes(capnp::Data::Reader d) {
  auto b = reinterpret_cast<const std::byte*>(d.begin());
  return loom::bytes(b, b + d.size());
}

// Payload.inline as a tensor's data, once check(size) has passed (a copy into host memory).
template <class Check>
std::shared_ptr<const storage> inline_storage(capnp::Data::Reader d, Check&& check) {
  check(d.size());
  auto b = reinterpret_cast<const std::byte*>(d.begin());
  return std::make_shared<host_storage>(std::vector<std::byte>(b, b + d.size()));
}

template <class Source>
value read_tensor(schema::Tensor::Reader t, Source& src) {
  auto raw = static_cast<std::uint16_t>(t.getDtype());
  if (raw > static_cast<std::uint16_t>(dtype::u8)) Source::reject(fmt::format("unknown tensor dtype {}", raw));
  auto dt = static_cast<dtype>(raw);
  auto sh = t.getShape();
  if (sh.size() > max_dimensions) Source::reject(line(Source::words.dimensions, std::size_t{sh.size()}, max_dimensions));
  std::vector<std::int64_t> shape;
  shape.reserve(sh.size());
  std::uint64_t elements = 1;
  for (std::int64_t d : sh) {
    if (d < 0) Source::reject(line(Source::words.negative, d));
    if (__builtin_mul_overflow(elements, static_cast<std::uint64_t>(d), &elements))
      Source::reject(line(Source::words.overflow));
    shape.push_back(d);
  }
  std::uint64_t nbytes = 0;
  if (__builtin_mul_overflow(elements, std::uint64_t{dtype_size(dt)}, &nbytes) ||
      elements > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    Source::reject(line(Source::words.overflow));
  auto data = src.tensor_data(t.getData(), [&](std::size_t have) {
    if (have != nbytes)
      Source::reject(line(Source::words.data_size, std::string_view(dtype_name(dt)),
                          std::string_view(fmt::format("{}", fmt::join(shape, ","))), nbytes, have));
  });
  return tensor(dt, std::move(shape), std::move(data));
}

// Reads r; depth: how many lists and maps already hold it.
template <class Source>
value read(schema::Value::Reader r, Source& src, int depth = 0) {
  if (depth > max_depth) Source::reject(line(Source::words.too_deep, max_depth));
  switch (r.which()) {
    case schema::Value::NULL_: return {};
    case schema::Value::BOOL: return r.getBool();
    case schema::Value::INT: return r.getInt();
    case schema::Value::FLOAT: return r.getFloat();
    case schema::Value::STRING: {
      auto t = r.getString();
      return std::string(t.begin(), t.size());
    }
    case schema::Value::BYTES: return src.bytes(r.getBytes());
    case schema::Value::LIST: {
      auto l = r.getList();
      value_list out;
      out.reserve(l.size());
      for (auto e : l) out.push_back(read(e, src, depth + 1));
      return out;
    }
    case schema::Value::MAP: {
      auto m = r.getMap();
      value_map out;
      out.reserve(m.size());
      for (auto e : m) {
        auto k = e.getKey();
        out.emplace_back(std::string(k.begin(), k.size()), read(e.getValue(), src, depth + 1));
      }
      return out;
    }
    case schema::Value::TENSOR: return read_tensor(r.getTensor(), src);
  }
  Source::reject(fmt::format("unknown value tag {}", static_cast<unsigned>(r.which())));
}

}  // namespace loom::wire
