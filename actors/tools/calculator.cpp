// tool.calculator: evaluates an arithmetic expression safely (actors/tools/expression.hpp; no code is run).
//   call:    expression (string, required)
//   reply:   {expression, result} (result: an int when the value is a whole number below 2^53, else a float)
//   errors:  with the column: "unexpected `)` at column 7", "division by zero at column 3",
//            "unknown function `foo` at column 1", "expression nested too deeply (more than 64 levels) ..."
#include <cmath>
#include <memory>

#include "loom/actors/kinds.hpp"
#include "loom/actors/tools/expression.hpp"
#include "loom/runtime/schema.hpp"

namespace loom::actors {
namespace {

graph::call_spec calculator_call() {
  return {"Evaluates an arithmetic expression: numbers, + - * / % ^, parentheses, pi, e and the functions sqrt, "
          "abs, min, max, round, floor, ceil, log, exp. Use it for any arithmetic instead of computing in your head.",
          {graph::param_spec::string("expression", "the expression, e.g. (120 * 12.5) * 365 * 0.68 - 6000 * 12")
               .require()}};
}

class calculator final : public node {
 public:
  value on_call(context&, const value& request) override {
    value req = check_call_request(calculator_call(), request);
    const std::string& text = req.find("expression")->as_string();
    double r = evaluate_expression(text);
    value result = std::fabs(r) < 9007199254740992.0 && r == std::trunc(r) ? value{static_cast<std::int64_t>(r)}
                                                                            : value{r};
    return value{value_map{{"expression", text}, {"result", result}}};
  }
};

}  // namespace

kind_def calculator_kind() {
  graph::kind_spec s;
  s.name = "tool.calculator";
  s.doc = "a tool that evaluates arithmetic expressions safely";
  s.call = calculator_call();
  return {std::move(s), [](const node_init&) { return std::make_unique<calculator>(); }};
}

}  // namespace loom::actors
