// parse_scalar reads `--set` values as YAML would: null, bool, int, float, string, and flow lists/maps.
#include <doctest/doctest.h>

#include <cmath>

#include "loom/graph/load.hpp"

using namespace loom::graph;

TEST_CASE("parse_scalar resolves plain scalars like YAML") {
  CHECK(parse_scalar("").is_null());
  CHECK(parse_scalar("~").is_null());
  CHECK(parse_scalar("null").is_null());
  CHECK(parse_scalar("true").as_bool());
  CHECK(parse_scalar("True").as_bool());
  CHECK_FALSE(parse_scalar("FALSE").as_bool());
  CHECK(parse_scalar("42").as_int() == 42);
  CHECK(parse_scalar("-7").as_int() == -7);
  CHECK(parse_scalar("+7").as_int() == 7);
  CHECK(parse_scalar("0x1F").as_int() == 31);
  CHECK(parse_scalar("1.5").as_float() == 1.5);
  CHECK(parse_scalar("1e3").is_float());
  CHECK(parse_scalar("1e3").as_float() == 1000.0);
  CHECK(parse_scalar(".5").as_float() == 0.5);
  CHECK(std::isinf(parse_scalar(".inf").as_float()));
  CHECK(parse_scalar("-.inf").as_float() < 0);
  CHECK(std::isnan(parse_scalar(".nan").as_float()));
  CHECK(parse_scalar("hello world").as_string() == "hello world");
  CHECK(parse_scalar("1.2.3").as_string() == "1.2.3");
  CHECK(parse_scalar("99999999999999999999").is_float());  // too large for an integer
  CHECK(parse_scalar("yes").is_string());
}

TEST_CASE("parse_scalar keeps quoted text as strings and reads flow collections") {
  CHECK(parse_scalar("\"10\"").as_string() == "10");
  CHECK(parse_scalar("'true'").as_string() == "true");
  CHECK(parse_scalar("[1, 2]") == config(config_list{1, 2}));
  CHECK(parse_scalar("{a: 1, b: [x]}") == config(config_map{{"a", 1}, {"b", config_list{"x"}}}));
  CHECK(parse_scalar("[1, 2").as_string() == "[1, 2");  // not YAML: the text as written
}

TEST_CASE("config::str renders YAML flow that reads back the same") {
  config c(config_map{{"a", 1}, {"b", config_list{"x", "10", true, 1.0, config{}}}, {"c", "a: b"}});
  CHECK(c.str() == "{a: 1, b: [x, \"10\", true, 1.0, null], c: \"a: b\"}");
  CHECK(parse_scalar(c.str()) == c);
}
