// tests/state/value_codec_test.cpp: the state file's value blobs (runtime/state/value_codec.hpp) and CRC-32C.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "loom/runtime/state/crc32c.hpp"
#include "loom/runtime/state/value_codec.hpp"
#include "loom/runtime/transport/loom.capnp.h"

using namespace loom;
using namespace std::string_literals;

namespace {

std::uint32_t crc_bitwise(const unsigned char* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

value round_trip(const value& v) { return state::decode(state::encode(v)); }

// A value nested `depth` lists deep around an int.
value nested(int depth) {
  value v = 7;
  for (int i = 0; i < depth; ++i) v = value_list{v};
  return v;
}

// A device tensor's storage, for the refusal (no GPU needed).
class fake_device_storage final : public storage {
 public:
  const std::byte* data() const override { return bytes_; }
  std::size_t size() const override { return sizeof bytes_; }
  int device() const override { return 0; }

 private:
  std::byte bytes_[16]{};
};

// A blob around any Cap'n Proto message, with a correct checksum: what a crafted file could hold.
state::blob blob_of(capnp::MallocMessageBuilder& b) {
  auto words = capnp::messageToFlatArray(b);
  auto body = words.asBytes();
  state::blob out(8 + body.size());
  out[0] = std::byte{'L'};
  out[1] = std::byte{'V'};
  out[2] = std::byte{1};
  auto crc = state::crc32c(body.begin(), body.size());
  for (int i = 0; i < 4; ++i) out[4 + static_cast<std::size_t>(i)] = static_cast<std::byte>(crc >> (8 * i));
  std::memcpy(out.data() + 8, body.begin(), body.size());
  return out;
}

std::string decode_error_of(const state::blob& b) {
  try {
    state::decode(b);
  } catch (const state::decode_error& e) {
    return e.what();
  }
  return "(decoded)";
}

}  // namespace

TEST_CASE("crc32c: the standard check value, and every length and split agrees with a bitwise CRC") {
  CHECK(state::crc32c("123456789", 9) == 0xE3069283u);
  CHECK(state::crc32c("", 0) == 0u);
  std::mt19937 rng(23);
  std::vector<unsigned char> data(300);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  for (std::size_t n = 0; n <= data.size(); ++n) {
    auto want = crc_bitwise(data.data(), n);
    REQUIRE(state::crc32c(data.data(), n) == want);
    auto split = n / 3;
    CHECK(state::crc32c(data.data() + split, n - split, state::crc32c(data.data(), split)) == want);
  }
}

TEST_CASE("value blobs: every scalar comes back exactly, ints at their edges and doubles bit for bit") {
  for (const value& v : {value(), value(true), value(false), value(std::int64_t{0}), value(std::int64_t{-1}),
                         value(std::numeric_limits<std::int64_t>::min()), value(std::numeric_limits<std::int64_t>::max()),
                         value(std::uint64_t{0xFFFFFFFFFFFFFFFFull})}) {
    auto back = round_trip(v);
    CHECK(back.kind() == v.kind());
    CHECK(back == v);
  }
  for (double d : {0.0, -0.0, 1.5, -1e308, std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max(),
                   std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::quiet_NaN()}) {
    auto back = round_trip(d);
    REQUIRE(back.is_float());
    CHECK(std::bit_cast<std::uint64_t>(back.as_float()) == std::bit_cast<std::uint64_t>(d));
  }
}

TEST_CASE("value blobs: strings with NULs, bytes of every value, lists, maps in order, nesting") {
  std::string with_nuls = "a\0b\0\0c"s;
  REQUIRE(with_nuls.size() == 6);
  CHECK(round_trip(with_nuls).as_string() == with_nuls);
  CHECK(round_trip(std::string()).as_string().empty());
  CHECK(round_trip("héllo ✓").as_string() == "héllo ✓");
  std::string big(1 << 20, 'x');
  big[12345] = '\0';
  CHECK(round_trip(big).as_string() == big);

  bytes all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::byte>(i));
  CHECK(round_trip(all).as_bytes() == all);
  auto empty_bytes = round_trip(bytes{});
  CHECK(empty_bytes.is_bytes());
  CHECK(empty_bytes.as_bytes().empty());

  CHECK(round_trip(value_list{}).as_list().empty());
  value_map m{{"z", 1}, {"a", "two"}, {"m", value_list{1, 2.5, nullptr}}, {"a", false}};  // order and duplicates kept
  auto back = round_trip(m);
  REQUIRE(back.is_map());
  CHECK(back == value(m));
  CHECK(back.as_map()[0].first == "z");
  CHECK(back.as_map()[3].first == "a");

  value deep = value_map{{"k", value_list{value_map{{"x", value_list{bytes{std::byte{1}}, value_list{}}}}}}};
  CHECK(round_trip(deep) == deep);
  CHECK(round_trip(nested(state::max_depth)) == nested(state::max_depth));
  CHECK_THROWS_WITH_AS(state::encode(nested(state::max_depth + 1)), doctest::Contains("nested deeper than 48"),
                       state::encode_error);
}

TEST_CASE("value blobs: host tensors of every dtype come back; a device tensor is refused") {
  for (auto dt : {dtype::f32, dtype::f64, dtype::f16, dtype::bf16, dtype::i8, dtype::i32, dtype::i64, dtype::u8}) {
    auto t = tensor::zeros(dt, {2, 3});
    std::vector<std::byte> raw(t.nbytes());
    for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::byte>(i * 7 + 1);
    tensor filled(dt, {2, 3}, std::make_shared<host_storage>(raw));
    auto back = round_trip(filled);
    REQUIRE(back.is_tensor());
    CHECK(back.as_tensor().type() == dt);
    CHECK(back.as_tensor().shape() == std::vector<std::int64_t>{2, 3});
    CHECK(back == value(filled));
  }
  auto scalar = tensor::from<double>({}, {3.25});
  CHECK(round_trip(scalar) == value(scalar));
  auto empty = tensor::zeros(dtype::f32, {0, 5});
  CHECK(round_trip(empty) == value(empty));

  tensor on_gpu(dtype::f32, {4}, std::make_shared<fake_device_storage>());
  CHECK_THROWS_WITH_AS(state::encode(value_list{1, on_gpu}),
                       doctest::Contains("a tensor on device 0 cannot be kept in a state file; copy it to the host first"),
                       state::encode_error);
}

TEST_CASE("value blobs: a list blob holds a link's values; decode_list refuses anything else") {
  std::vector<value> vals{1, "two", value_list{3}, nullptr};
  auto back = state::decode_list(state::encode_list(vals));
  CHECK(back == value_list(vals.begin(), vals.end()));
  CHECK(state::decode_list(state::encode_list({})).empty());
  CHECK_THROWS_WITH_AS(state::decode_list(state::encode(7)), doctest::Contains("a value of type int where a list of values belongs"),
                       state::decode_error);
}

TEST_CASE("value blobs: every flipped byte and every truncation is an error, never a wrong value") {
  value v = value_map{{"text", "a checkpoint"}, {"n", 42}, {"xs", value_list{1.5, bytes{std::byte{9}}}}};
  auto good = state::encode(v);
  for (std::size_t i = 0; i < good.size(); ++i) {
    auto bad = good;
    bad[i] ^= std::byte{0x5A};
    CAPTURE(i);
    CHECK_THROWS_AS(state::decode(bad), state::decode_error);
  }
  for (std::size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS(state::decode(std::span<const std::byte>(good.data(), n)), state::decode_error);
  }
  auto body_flip = good;
  body_flip[20] ^= std::byte{1};
  CHECK(decode_error_of(body_flip).find("checksum mismatch") != std::string::npos);
  auto other_format = good;
  other_format[2] = std::byte{2};
  CHECK(decode_error_of(other_format) == "a value blob of format 2.0 (this loom reads format 1.0)");
  CHECK(decode_error_of(state::blob(3)) == "3 bytes, shorter than a blob's 8-byte header");
}

TEST_CASE("value blobs: crafted messages with a correct checksum are still checked") {
  namespace s = transport::schema;
  {  // nesting past the limit, which encode would refuse
    capnp::MallocMessageBuilder b;
    auto v = b.initRoot<s::Value>();
    for (int i = 0; i < state::max_depth + 2; ++i) v = v.initList(1)[0];
    v.setInt(1);
    CHECK(decode_error_of(blob_of(b)).find("nested deeper") != std::string::npos);
  }
  {  // a tensor whose data does not match its shape
    capnp::MallocMessageBuilder b;
    auto t = b.initRoot<s::Value>().initTensor();
    t.setDtype(s::DType::F32);
    auto sh = t.initShape(2);
    sh.set(0, 1000);
    sh.set(1, 1000);
    t.initData().setInline(capnp::Data::Reader(reinterpret_cast<const kj::byte*>("abcd"), 4));
    CHECK(decode_error_of(blob_of(b)) == "a tensor f32 of shape [1000,1000] needs 4000000 bytes of data, has 4");
  }
  {  // a negative dimension, and a payload part (only the wire has those)
    capnp::MallocMessageBuilder b;
    auto t = b.initRoot<s::Value>().initTensor();
    t.initShape(1).set(0, -3);
    CHECK(decode_error_of(blob_of(b)) == "a tensor dimension of -3");
    capnp::MallocMessageBuilder c;
    c.initRoot<s::Value>().initBytes().setFrame(1);
    CHECK(decode_error_of(blob_of(c)) == "bytes refer to a payload part, which a state file never has");
  }
  {  // random words behind a valid header and checksum: an error or a value, never a crash
    std::mt19937_64 rng(2323);
    int errors = 0;
    for (int round = 0; round < 3000; ++round) {
      std::size_t words = 1 + rng() % 12;
      std::vector<std::byte> body(words * 8);
      for (auto& b : body) b = static_cast<std::byte>(rng());
      if (round % 2 == 0) {  // a plausible segment table: one segment of the right size
        std::uint32_t zero = 0, size = static_cast<std::uint32_t>(words - 1);
        std::memcpy(body.data(), &zero, 4);
        std::memcpy(body.data() + 4, &size, 4);
      }
      state::blob blob(8 + body.size());
      blob[0] = std::byte{'L'};
      blob[1] = std::byte{'V'};
      blob[2] = std::byte{1};
      auto crc = state::crc32c(body.data(), body.size());
      for (int i = 0; i < 4; ++i) blob[4 + static_cast<std::size_t>(i)] = static_cast<std::byte>(crc >> (8 * i));
      std::memcpy(blob.data() + 8, body.data(), body.size());
      try {
        state::decode(blob);
      } catch (const state::decode_error&) {
        ++errors;
      }
    }
    CHECK(errors > 0);
  }
}
