// graph/scalar.cpp: plain-scalar resolution (YAML 1.2 core schema, plus a few YAML 1.1 spellings) and sizes.
#include "loom/graph/detail/scalar.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <limits>

namespace loom::graph {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  bool negative = false;
  std::string_view digits = s;
  if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) {
    negative = digits.front() == '-';
    digits.remove_prefix(1);
  }
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  if (digits.empty()) return std::nullopt;
  std::uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (!negative && magnitude > max) return std::nullopt;
  if (negative && magnitude > max + 1) return std::nullopt;
  if (negative) return magnitude == max + 1 ? std::numeric_limits<std::int64_t>::min()
                                            : -static_cast<std::int64_t>(magnitude);
  return static_cast<std::int64_t>(magnitude);
}

// A float as YAML writes it: digits with a '.' and/or an exponent, or .inf/.nan. No hex floats, no "inf".
std::optional<double> parse_float(std::string_view s) {
  std::string l = lower(s);
  std::string_view body = l;
  bool negative = false;
  if (!body.empty() && (body.front() == '+' || body.front() == '-')) {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf") return negative ? -HUGE_VAL : HUGE_VAL;
  if (l == ".nan") return std::numeric_limits<double>::quiet_NaN();
  bool digit = false;
  for (char c : body) {
    if (std::isdigit(static_cast<unsigned char>(c))) digit = true;
    else if (c != '.' && c != 'e' && c != '+' && c != '-') return std::nullopt;
  }
  if (!digit) return std::nullopt;
  if (!std::isdigit(static_cast<unsigned char>(body.front())) && body.front() != '.') return std::nullopt;
  double value = 0;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), value);
  if (ec != std::errc{} || end != body.data() + body.size()) return std::nullopt;
  return negative ? -value : value;
}

}  // namespace

config resolve_plain_scalar(std::string_view text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") return config{};
  if (text == "true" || text == "True" || text == "TRUE") return config{true};
  if (text == "false" || text == "False" || text == "FALSE") return config{false};
  if (auto i = parse_int(text)) return config{*i};
  if (auto d = parse_float(text)) return config{*d};
  return config{std::string(text)};
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string& error) {
  struct unit {
    std::string_view name;
    double factor;
  };
  static constexpr std::array<unit, 9> units{{{"KiB", 1024.0},
                                              {"MiB", 1024.0 * 1024},
                                              {"GiB", 1024.0 * 1024 * 1024},
                                              {"TiB", 1024.0 * 1024 * 1024 * 1024},
                                              {"KB", 1e3},
                                              {"MB", 1e6},
                                              {"GB", 1e9},
                                              {"TB", 1e12},
                                              {"B", 1}}};
  std::size_t split = 0;
  while (split < text.size() && (std::isdigit(static_cast<unsigned char>(text[split])) || text[split] == '.'))
    ++split;
  std::string_view number = text.substr(0, split);
  std::string_view suffix = text.substr(split);
  while (!suffix.empty() && suffix.front() == ' ') suffix.remove_prefix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  double factor = 0;
  for (const auto& u : units)
    if (suffix == u.name) factor = u.factor;
  if (suffix.empty()) factor = 1;
  if (number.empty() || ec != std::errc{} || end != number.data() + number.size() || factor == 0) {
    error = fmt::format("`{}` is not a size; write bytes as an integer or a number with a unit "
                        "(KiB, MiB, GiB, TiB, KB, MB, GB, TB), e.g. 512MiB", text);
    return std::nullopt;
  }
  double bytes = value * factor;
  if (bytes >= 18446744073709551615.0) {
    error = fmt::format("size `{}` is too large", text);
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(bytes + 0.5);
}

}  // namespace loom::graph
