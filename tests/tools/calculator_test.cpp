// tests/tools/calculator_test.cpp: tool.calculator evaluates arithmetic with the usual precedence, and says
// what is wrong and at which column otherwise; it never runs code.
#include <doctest/doctest.h>

#include <string>

#include "loom/actors/tools/expression.hpp"
#include "tests/tools/tool_call.hpp"

using namespace loom;
using loom::actors::evaluate_expression;
using loom::actors::expression_error;

TEST_CASE("the calculator evaluates numbers, operators and precedence" * doctest::timeout(10)) {
  CHECK(evaluate_expression("1 + 2 * 3") == 7);
  CHECK(evaluate_expression("(1 + 2) * 3") == 9);
  CHECK(evaluate_expression("2 ^ 3 ^ 2") == 512);  // right-associative
  CHECK(evaluate_expression("-2 ^ 2") == -4);      // ^ binds tighter than unary minus
  CHECK(evaluate_expression("2 ^ -1") == 0.5);
  CHECK(evaluate_expression("10 - 4 - 3") == 3);   // left-associative
  CHECK(evaluate_expression("7 % 4 * 2") == 6);
  CHECK(evaluate_expression("--3") == 3);
  CHECK(evaluate_expression("1.5e3 + .5 + 2E-1") == doctest::Approx(1500.7));
  CHECK(evaluate_expression(" 120*12.5*365 ") == 547500);
}

TEST_CASE("the calculator knows pi, e and its functions" * doctest::timeout(10)) {
  CHECK(evaluate_expression("pi") == doctest::Approx(3.14159265358979));
  CHECK(evaluate_expression("log(e)") == doctest::Approx(1));
  CHECK(evaluate_expression("log(1000, 10)") == doctest::Approx(3));
  CHECK(evaluate_expression("sqrt(16) + abs(-2) + exp(0)") == 7);
  CHECK(evaluate_expression("min(3, 1, 2) + max(3, 1, 2)") == 4);
  CHECK(evaluate_expression("round(2.5) + floor(-1.5) + ceil(1.2)") == 3);
}

TEST_CASE("calculator errors name what is wrong and the column" * doctest::timeout(10)) {
  auto error = [](const char* e) {
    try {
      evaluate_expression(e);
    } catch (const expression_error& x) {
      return std::string(x.what());
    }
    return std::string("no error");
  };
  CHECK(error("(1 + 2))") == "unexpected `)` at column 8");
  CHECK(error("1 + * 2") == "unexpected `*` at column 5");
  CHECK(error("1 +") == "unexpected end of expression at column 4");
  CHECK(error("(1 + 2") == "missing `)` for the `(` at column 1");
  CHECK(error("4 / (2 - 2)") == "division by zero at column 3");
  CHECK(error("4 % 0") == "modulo by zero at column 3");
  CHECK(error("foo(2)") ==
        "unknown function `foo` (known: sqrt, abs, min, max, round, floor, ceil, log, exp) at column 1");
  CHECK(error("2 * x") == "unknown name `x` (the constants are pi and e) at column 5");
  CHECK(error("sqrt(-1)") == "sqrt of a negative number at column 1");
  CHECK(error("sqrt(1, 2)") == "`sqrt` takes 1 argument, found 2 at column 1");
  CHECK(error("10 ^ 400") == "the result is not a finite number (overflow?)");
  CHECK(error("") == "empty expression");
  CHECK(error("system(\"ls\")") == error("system(1)"));  // just an unknown function: nothing is run
  CHECK(error("1; 2") == "unexpected `;` at column 2");
}

TEST_CASE("the calculator refuses expressions nested deeper than its limit" * doctest::timeout(10)) {
  auto nested = [](std::size_t n) { return std::string(n, '(') + "1" + std::string(n, ')'); };
  constexpr auto limit = std::size_t(actors::max_expression_depth);
  CHECK(evaluate_expression(nested(limit)) == 1);
  CHECK_THROWS_WITH_AS(evaluate_expression(nested(limit + 1)),
                       "expression nested too deeply (more than 64 levels) at column 65", expression_error);
  std::string deep = std::string(1000, '(') + "1" + std::string(1000, ')');
  CHECK_THROWS_WITH_AS(evaluate_expression(deep), doctest::Contains("nested too deeply"), expression_error);
  CHECK_THROWS_WITH_AS(evaluate_expression(std::string(1000, '-') + "1"), doctest::Contains("nested too deeply"),
                       expression_error);
}

TEST_CASE("tool.calculator replies {expression, result}, an int for a whole number" * doctest::timeout(10)) {
  test::running n("tool.calculator", {});
  n.start();
  value r = test::call_tool(n, "tool.calculator", {{"expression", "(120 * 12.5) * 2"}});
  CHECK(r.find("expression")->as_string() == "(120 * 12.5) * 2");
  CHECK(r.find("result")->is_int());
  CHECK(r.find("result")->as_int() == 3000);
  value f = test::call_tool(n, "tool.calculator", {{"expression", "1 / 4"}});
  CHECK(f.find("result")->as_float() == 0.25);
  CHECK_THROWS_WITH_AS(test::call_tool(n, "tool.calculator", {{"expression", "1 / 0"}}), "division by zero at column 3",
                       std::invalid_argument);
}
