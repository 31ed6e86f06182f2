// actors/tools/expression.cpp: the calculator's recursive-descent parser (see expression.hpp).
//   expr    := term (('+' | '-') term)*
//   term    := unary (('*' | '/' | '%') unary)*
//   unary   := ('-' | '+') unary | power
//   power   := primary ('^' unary)?
//   primary := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
#include "loom/actors/tools/expression.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <string>
#include <vector>

namespace loom::actors {
namespace {

class parser {
 public:
  explicit parser(std::string_view s) : s_(s) {}

  double parse() {
    if (s_.size() > max_expression_length)
      fail(fmt::format("expression is longer than {} characters", max_expression_length));
    skip();
    if (pos_ == s_.size()) fail("empty expression");
    double v = expr();
    if (pos_ != s_.size()) unexpected();
    if (!std::isfinite(v)) fail("the result is not a finite number (overflow?)");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw expression_error(what); }
  [[noreturn]] void fail_at(const std::string& what, std::size_t at) const {
    throw expression_error(fmt::format("{} at column {}", what, at + 1));
  }
  [[noreturn]] void unexpected() const {
    if (pos_ >= s_.size()) fail_at("unexpected end of expression", pos_);
    fail_at(fmt::format("unexpected `{}`", s_[pos_]), pos_);
  }

  void skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      skip();
      return true;
    }
    return false;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  static bool letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

  // Counts one level of nesting for the scope of a rule that recurses.
  struct level {
    parser& p;
    explicit level(parser& q) : p(q) {
      if (++p.depth_ > max_expression_depth)
        p.fail_at(fmt::format("expression nested too deeply (more than {} levels)", max_expression_depth), p.pos_);
    }
    ~level() { --p.depth_; }
  };

  double expr() {
    double v = term();
    for (;;) {
      if (eat('+')) v += term();
      else if (eat('-')) v -= term();
      else return v;
    }
  }

  double term() {
    double v = unary();
    for (;;) {
      std::size_t at = pos_;
      if (eat('*')) {
        v *= unary();
      } else if (eat('/')) {
        double d = unary();
        if (d == 0) fail_at("division by zero", at);
        v /= d;
      } else if (eat('%')) {
        double d = unary();
        if (d == 0) fail_at("modulo by zero", at);
        v = std::fmod(v, d);
      } else {
        return v;
      }
    }
  }

  double unary() {
    if (pos_ < s_.size() && (s_[pos_] == '-' || s_[pos_] == '+')) {
      level l(*this);
      bool minus = s_[pos_] == '-';
      eat(s_[pos_]);
      double v = unary();
      return minus ? -v : v;
    }
    return power();
  }

  double power() {
    double base = primary();
    if (eat('^')) return std::pow(base, unary());
    return base;
  }

  double primary() {
    if (pos_ >= s_.size()) unexpected();
    char c = s_[pos_];
    if (digit(c) || c == '.') return number();
    if (letter(c)) return name();
    std::size_t open = pos_;
    if (c == '(') {
      level l(*this);
      eat('(');
      double v = expr();
      if (!eat(')')) {
        if (pos_ >= s_.size()) fail_at("missing `)` for the `(`", open);
        unexpected();
      }
      return v;
    }
    unexpected();
  }

  double number() {
    std::size_t start = pos_;
    while (pos_ < s_.size() && digit(s_[pos_])) ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      while (pos_ < s_.size() && digit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      std::size_t e = pos_ + 1;
      if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
      if (e < s_.size() && digit(s_[e])) {
        pos_ = e;
        while (pos_ < s_.size() && digit(s_[pos_])) ++pos_;
      }
    }
    double v = 0;
    auto [end, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, v);
    if (ec != std::errc() || end != s_.data() + pos_)
      fail_at(fmt::format("malformed number `{}`", s_.substr(start, pos_ - start)), start);
    skip();
    return v;
  }

  double name() {
    std::size_t start = pos_;
    while (pos_ < s_.size() && (letter(s_[pos_]) || digit(s_[pos_]))) ++pos_;
    std::string id(s_.substr(start, pos_ - start));
    skip();
    if (pos_ < s_.size() && s_[pos_] == '(') return call(id, start);
    if (id == "pi") return 3.14159265358979323846;
    if (id == "e") return 2.71828182845904523536;
    fail_at(fmt::format("unknown name `{}` (the constants are pi and e)", id), start);
  }

  double call(const std::string& f, std::size_t at) {
    static const char* known[] = {"sqrt", "abs", "min", "max", "round", "floor", "ceil", "log", "exp"};
    bool ok = false;
    for (const char* k : known) ok = ok || f == k;
    if (!ok)
      fail_at(fmt::format("unknown function `{}` (known: sqrt, abs, min, max, round, floor, ceil, log, exp)", f), at);
    level l(*this);
    eat('(');
    std::vector<double> args{expr()};
    while (eat(',')) args.push_back(expr());
    if (!eat(')')) unexpected();
    auto arity = [&](std::size_t lo, std::size_t hi) {
      if (args.size() < lo || args.size() > hi)
        fail_at(lo == hi ? fmt::format("`{}` takes {} argument{}, found {}", f, lo, lo == 1 ? "" : "s", args.size())
                         : fmt::format("`{}` takes {} to {} arguments, found {}", f, lo, hi, args.size()),
                at);
    };
    double x = args[0];
    if (f == "min" || f == "max") {
      double v = x;
      for (double a : args) v = f == "min" ? std::fmin(v, a) : std::fmax(v, a);
      return v;
    }
    if (f == "log") {
      arity(1, 2);
      if (x <= 0) fail_at("log of a number that is not positive", at);
      if (args.size() == 1) return std::log(x);
      if (args[1] <= 0 || args[1] == 1) fail_at("log base must be positive and not 1", at);
      return std::log(x) / std::log(args[1]);
    }
    arity(1, 1);
    if (f == "sqrt") {
      if (x < 0) fail_at("sqrt of a negative number", at);
      return std::sqrt(x);
    }
    if (f == "abs") return std::fabs(x);
    if (f == "round") return std::round(x);
    if (f == "floor") return std::floor(x);
    if (f == "ceil") return std::ceil(x);
    return std::exp(x);
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

double evaluate_expression(std::string_view text) { return parser(text).parse(); }

}  // namespace loom::actors
