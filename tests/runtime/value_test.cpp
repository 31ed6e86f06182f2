// tests/runtime/value_test.cpp: values are immutable and shared; JSON round trips; tensors check shapes.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <thread>
#include <vector>

#include "loom/runtime/json.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/value.hpp"

using namespace loom;

TEST_CASE("copying a value shares its payload") {
  value a{std::string(1000, 'x')};
  value b = a;
  CHECK(b.shares_payload_with(a));
  CHECK(b == a);
  value c{std::string(1000, 'x')};
  CHECK(c == a);
  CHECK_FALSE(c.shares_payload_with(a));
}

TEST_CASE("a value is two words; moves leave null, copies and assignments keep payloads alive") {
  static_assert(sizeof(value) == 16);
  value a{std::string(100, 'a')};
  value b = std::move(a);
  CHECK(a.is_null());  // NOLINT(bugprone-use-after-move): the moved-from state is part of the promise
  CHECK(b.as_string() == std::string(100, 'a'));
  b = b;  // self-assignment keeps the payload
  CHECK(b.as_string().size() == 100);
  value& self = b;
  b = std::move(self);
  CHECK(b.as_string().size() == 100);
  // Assigning a value from inside the payload that the assignment releases.
  value list{value_list{value{std::string("kept")}, value{1.5}, value{true}}};
  list = list.as_list()[0];
  CHECK(list.as_string() == "kept");
  value d{-7.25}, i{std::int64_t{-3}}, t{true};
  CHECK(d.as_float() == -7.25);
  CHECK(i.as_int() == -3);
  CHECK(i.as_float() == -3.0);
  CHECK(t.as_bool());
  value copy = d;
  CHECK(copy == d);
  CHECK_FALSE(copy.shares_payload_with(d));  // scalars have no payload
  // A payload outlives every holder but the last, across threads (ASan/TSan builds check the count).
  value shared{bytes(64, std::byte{9})};
  std::vector<std::thread> ts;
  for (int k = 0; k < 4; ++k)
    ts.emplace_back([shared] {
      for (int j = 0; j < 10000; ++j) {
        value x = shared;
        value y = std::move(x);
        CHECK(y.as_bytes().size() == 64);
      }
    });
  for (auto& th : ts) th.join();
  CHECK(shared.as_bytes().size() == 64);
}

TEST_CASE("accessors name the expected and the actual type") {
  value v{42};
  CHECK(v.as_int() == 42);
  CHECK(v.as_float() == 42.0);
  CHECK_THROWS_WITH_AS(v.as_string(), "expected a string value, found int", type_error);
}

TEST_CASE("map lookup finds fields in order") {
  value m{value_map{{"a", 1}, {"b", "two"}}};
  REQUIRE(m.find("b") != nullptr);
  CHECK(m.find("b")->as_string() == "two");
  CHECK(m.find("c") == nullptr);
  CHECK(value{3}.find("a") == nullptr);
}

TEST_CASE("values round trip through JSON, bytes as base64 and tensors with shape") {
  bytes raw{std::byte{0}, std::byte{1}, std::byte{254}, std::byte{255}, std::byte{7}};
  value v{value_map{{"n", nullptr},
                    {"b", true},
                    {"i", -3},
                    {"f", 2.5},
                    {"s", "text"},
                    {"raw", raw},
                    {"l", value_list{1, "x"}},
                    {"t", tensor::from<float>({2, 2}, std::vector<float>{1, 2, 3, 4})}}};
  auto line = to_json_line(v);
  CHECK(line.find("\"$bytes\":\"AAH+/wc=\"") != std::string::npos);
  auto back = from_json(nlohmann::ordered_json::parse(line));
  CHECK(back == v);
}

TEST_CASE("text of a string is the string; of anything else, JSON") {
  CHECK(to_text(value{"hi"}) == "hi");
  CHECK(to_text(value{value_list{1, 2}}) == "[1,2]");
}

TEST_CASE("a tensor refuses storage smaller than its shape") {
  auto small = std::make_shared<host_storage>(std::vector<std::byte>(8));
  CHECK_THROWS_AS(tensor(dtype::f32, {4}, small), std::invalid_argument);
  CHECK(tensor(dtype::f32, {2}, small).nbytes() == 8);
  CHECK_THROWS_WITH(parse_dtype("float128"), doctest::Contains("expected one of: f32"));
}

TEST_CASE("the registry refuses a kind registered twice or without a doc") {
  registry r;
  kind_def k{{"x.y", "A kind.", {}, {{"out", ""}}, {}, {}, {}}, [](const node_init&) { return nullptr; }};
  r.add(k);
  CHECK_THROWS_WITH(r.add(k), "kind 'x.y' is already registered");
  kind_def undocumented{{"x.z", "", {}, {}, {}, {}, {}}, [](const node_init&) { return nullptr; }};
  CHECK_THROWS_WITH(r.add(undocumented), "kind 'x.z': needs a one-line doc");
}

TEST_CASE("loading a missing plugin names the path") {
  registry r;
  CHECK_THROWS_WITH(load_plugin(r, "/nonexistent/libnope.so"), doctest::Contains("/nonexistent/libnope.so"));
}

// An empty buffer is a valid value: a tensor with a 0 dimension may have a storage whose data() is null.
// Comparing two of them must not hand that pointer to memcmp (the asan preset's UBSan fails on it).
TEST_CASE("empty tensors compare equal without touching their null data") {
  auto a = tensor::zeros(dtype::f32, {0, 3}), b = tensor::zeros(dtype::f32, {0, 3});
  REQUIRE(a.data()->data() == nullptr);  // std::vector<std::byte>{} holds no buffer
  CHECK(a == b);
  CHECK_FALSE(a == tensor::zeros(dtype::f32, {3, 0}));  // same (no) bytes, another shape
  CHECK(value{a} == value{b});
  auto none = std::make_shared<host_storage>(std::vector<std::byte>{});
  CHECK_FALSE(tensor(dtype::u8, {0}, none) == tensor::from<std::int32_t>({0}, {}));  // dtypes differ
  CHECK(tensor(dtype::i32, {0}, none) == tensor::from<std::int32_t>({0}, {}));
}

// Found by fuzz_wire (a received tensor of shape [2147483652, 4294967296, 0]): the element count of a shape
// with a 0 dimension is 0 without multiplying the others, whose product overflows; a shape whose byte size
// does not fit in 64 bits is refused by name.
TEST_CASE("a 0 dimension makes an empty tensor however large the others; shapes past 64 bits are refused") {
  auto none = std::make_shared<host_storage>(std::vector<std::byte>{});
  tensor t(dtype::f32, {2147483652, 4294967296, 0}, none);
  CHECK(t.elements() == 0);
  CHECK(t.nbytes() == 0);
  CHECK(tensor::zeros(dtype::f64, {0, std::int64_t{1} << 62, 3}).nbytes() == 0);
  CHECK_THROWS_WITH_AS(tensor(dtype::f32, {2147483652, 4294967296}, none),
                       "tensor: shape [2147483652,4294967296] has more elements than fit in 64 bits", std::invalid_argument);
  CHECK_THROWS_WITH_AS(tensor::zeros(dtype::f64, {std::int64_t{1} << 61, 2}),
                       "tensor: shape [2305843009213693952,2] of f64 needs more bytes than fit in 64 bits",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(tensor::zeros(dtype::u8, {3, -1}), "tensor: negative dimension -1", std::invalid_argument);
}
