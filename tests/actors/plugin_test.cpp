// Tests of the example plugin (examples/plugin): loaded with load_plugin() as `loom run --plugin` does, its
// kind registers and runs like a built-in one.
#include <doctest/doctest.h>

#include <string>

#include "tests/actors/harness.hpp"

using loom::value;

namespace {

const loom::registry& with_plugin() {
  static const loom::registry r = [] {
    loom::registry reg;
    loom::load_plugin(reg, LOOM_EXAMPLE_PLUGIN);
    return reg;
  }();
  return r;
}

}  // namespace

TEST_SUITE("examples/plugin" * doctest::timeout(10)) {
  TEST_CASE("loom_register adds text.upper") {
    CHECK(with_plugin().kind_names() == std::vector<std::string>{"text.upper"});
  }

  TEST_CASE("text.upper upper-cases strings, puts the prefix before them and passes other values on") {
    loom::test::running n("text.upper", {{"prefix", "say: "}}, with_plugin());
    n.send("hello");
    n.send(3);
    CHECK(n.out() == std::vector<value>{"say: HELLO", 3});
  }

  TEST_CASE("loading a library that is not there names the path") {
    loom::registry r;
    CHECK_THROWS_WITH_AS(loom::load_plugin(r, "/no/such/plugin.so"), doctest::Contains("/no/such/plugin.so"),
                         std::runtime_error);
  }
}
