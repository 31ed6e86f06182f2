// actors/tools/expression.hpp: internal to loom_actors. A safe arithmetic evaluator (recursive descent; no code
// is ever run): numbers (12, 3.5, .5, 1e-3), + - * / % ^ (right-associative, binds tighter than unary minus:
// -2^2 = -4), parentheses, the constants pi and e, and the functions sqrt, abs, min, max, round, floor, ceil,
// log (natural; log(x, base)), exp.
#pragma once

#include <stdexcept>
#include <string_view>

namespace loom::actors {

// What went wrong and where: the message names the 1-based column ("unexpected `)` at column 7").
struct expression_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

inline constexpr int max_expression_depth = 64;  // nested parentheses, unary minuses and calls
inline constexpr std::size_t max_expression_length = 4096;

// Evaluates `text`; throws expression_error.
double evaluate_expression(std::string_view text);

}  // namespace loom::actors
