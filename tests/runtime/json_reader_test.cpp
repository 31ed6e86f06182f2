// The shared reader for JSON from outside (runtime/json_reader.hpp): depth, size and number limits checked
// while parsing, and errors that name the source and the place.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>

#include "loom/runtime/json.hpp"
#include "loom/runtime/json_reader.hpp"

using loom::json_error;
using loom::json_limits;

namespace {

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

json_error refused(std::string_view text, const json_limits& limits = {}) {
  try {
    (void)loom::read_json(text, "in.jsonl:7", limits);
  } catch (const json_error& e) {
    return e;
  }
  FAIL("the reader accepted text it should refuse");
  return json_error(json_error::kind::syntax, "", "", 0, 0, 0);
}

}  // namespace

TEST_CASE("nesting up to the limit is read; one level more is refused with the place, without a crash") {
  CHECK(loom::read_json(nested(64), "x").is_array());
  auto e = refused(nested(65));
  CHECK(e.type == json_error::kind::too_deep);
  CHECK(e.offset == 64);
  CHECK(std::string(e.what()) == "in.jsonl:7: arrays and objects are nested deeper than 64 levels (column 65)");
  // Hostile depths (the issue's 50,000 and 300,000 deep) are refused just the same: the parse stops at 65.
  CHECK(refused(nested(300'000)).type == json_error::kind::too_deep);
  std::string objects;
  for (int i = 0; i < 300'000; ++i) objects += R"({"a":)";
  CHECK(refused(objects).type == json_error::kind::too_deep);
  // Brackets inside strings, and escaped quotes, do not count.
  CHECK(loom::read_json(R"(["[[[[\"[[[[", "\\"])", "x", json_limits{1}).is_array());
  json_limits two;
  two.max_depth = 2;
  auto at = refused(R"({"a": [[1, {"b": []}]]})", two);
  CHECK(at.offset == 7);
}

TEST_CASE("a multi-line text's refusal gives line and column") {
  auto e = refused("{\n  \"a\": [1,\n  2,,]\n}");
  CHECK(e.type == json_error::kind::syntax);
  CHECK(e.line == 3);
  CHECK(e.column == 5);
  CHECK(std::string(e.what()).rfind("in.jsonl:7: invalid JSON: ", 0) == 0);
  CHECK(std::string(e.what()).find("(line 3, column 5)") != std::string::npos);
}

TEST_CASE("text over the size limit is refused before it is parsed") {
  json_limits small;
  small.max_bytes = 10;
  auto e = refused(R"({"a": "0123456789"})", small);
  CHECK(e.type == json_error::kind::too_big);
  CHECK(std::string(e.what()) == "in.jsonl:7: the JSON text is 19 bytes, over the limit of 10 bytes");
}

TEST_CASE("integers above INT64_MAX become the nearest double, or are refused; never a wrapped number") {
  auto v = loom::read_json_value("[18446744073709551615, 9223372036854775807, -9223372036854775808]", "x");
  REQUIRE(v.is_list());
  const auto& l = v.as_list();
  REQUIRE(l[0].is_float());
  CHECK(l[0].as_float() == 18446744073709551615.0);
  CHECK(l[1].as_int() == std::numeric_limits<std::int64_t>::max());
  CHECK(l[2].as_int() == std::numeric_limits<std::int64_t>::min());
  json_limits strict;
  strict.big = json_limits::big_integers::refuse;
  auto e = refused("[1, 9223372036854775808]", strict);
  CHECK(e.type == json_error::kind::number);
  CHECK(std::string(e.what()) == "in.jsonl:7: the integer 9223372036854775808 is larger than 9223372036854775807");
  // A tree made elsewhere (nlohmann's own parse) does not wrap either.
  CHECK(loom::from_json(nlohmann::json::parse("18446744073709551615")).as_float() == 18446744073709551615.0);
}

TEST_CASE("a number out of a double's range is refused") {
  CHECK(refused("[1e400]").type == json_error::kind::syntax);
}

TEST_CASE("from_json bounds its recursion for trees made in code") {
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < 600; ++i) deep = nlohmann::json::array({deep});
  CHECK_THROWS_AS(loom::from_json(deep), std::invalid_argument);
}
