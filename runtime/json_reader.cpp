// runtime/json_reader.cpp: nlohmann's own DOM builder behind a SAX filter that counts depth and checks
// numbers as the parser reports them. nlohmann's parser is iterative (a stack of states, not recursion), so
// the only recursion left is in what callers do with the tree afterwards, bounded by max_depth.
#include "loom/runtime/json_reader.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>

#include "loom/runtime/json.hpp"

namespace loom {
namespace {

// nlohmann's messages start "[json.exception.parse_error.101] parse error at line 1, column 3: "; the
// position is given again by json_error, so only the part after the last ": " prefix is kept.
std::string nlohmann_reason(const std::string& what) {
  auto at = what.find("]");
  std::string s = at == std::string::npos ? what : what.substr(at + 1);
  if (auto colon = s.find(": "); colon != std::string::npos && s.find("parse error") != std::string::npos)
    s = s.substr(colon + 2);
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  return s;
}

template <class J>
class limited_sax {
 public:
  using number_integer_t = typename J::number_integer_t;
  using number_unsigned_t = typename J::number_unsigned_t;
  using number_float_t = typename J::number_float_t;
  using string_t = typename J::string_t;
  using binary_t = typename J::binary_t;

  limited_sax(J& root, const json_limits& limits) : dom_(root, false), limits_(limits) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) {
    if (v <= static_cast<number_unsigned_t>(std::numeric_limits<std::int64_t>::max())) return dom_.number_unsigned(v);
    if (limits_.big == json_limits::big_integers::refuse) {
      failure = {json_error::kind::number, fmt::format("the integer {} is larger than {}", v,
                                                       std::numeric_limits<std::int64_t>::max())};
      return false;
    }
    return dom_.number_float(static_cast<number_float_t>(v), string_t{});
  }
  bool number_float(number_float_t v, const string_t& s) { return dom_.number_float(v, s); }
  bool string(string_t& v) { return dom_.string(v); }
  bool binary(binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) { return enter() && dom_.start_object(n); }
  bool key(string_t& k) { return dom_.key(k); }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return enter() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& e) {
    failure = {json_error::kind::syntax, "invalid JSON: " + nlohmann_reason(e.what())};
    return false;
  }

  struct failed {
    json_error::kind kind;
    std::string reason;
  };
  std::optional<failed> failure;

 private:
  bool enter() {
    if (++depth_ <= limits_.max_depth) return true;
    failure = {json_error::kind::too_deep,
               fmt::format("arrays and objects are nested deeper than {} levels", limits_.max_depth)};
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<J> dom_;
  const json_limits& limits_;
  std::size_t depth_ = 0;
};

// The line and column (1-based, in bytes) of byte `offset` of `text`.
std::pair<std::size_t, std::size_t> position(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < offset; ++i)
    if (text[i] == '\n') ++line, line_start = i + 1;
  return {line, offset - line_start + 1};
}

// Where a refused text went wrong. A syntax error comes with its byte offset; a depth refusal (our SAX
// callback said stop) does not, so the text is scanned again for the first bracket past the limit. Both run
// only on failure: the parse itself tracks nothing per byte.
std::size_t deep_offset(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return text.size();
}

template <class J>
class offset_sax : public limited_sax<J> {
 public:
  using limited_sax<J>::limited_sax;
  template <class Exception>
  bool parse_error(std::size_t at, const std::string& token, const Exception& e) {
    offset = at > 0 ? at - 1 : 0;
    return limited_sax<J>::parse_error(at, token, e);
  }
  std::size_t offset = 0;
};

template <class J>
J read(std::string_view text, std::string_view source, const json_limits& limits_in) {
  json_limits limits = limits_in;
  limits.max_depth = std::min(limits.max_depth, hard_max_json_depth);
  if (text.size() > limits.max_bytes)
    throw json_error(json_error::kind::too_big, std::string(source),
                     fmt::format("the JSON text is {} bytes, over the limit of {} bytes", text.size(), limits.max_bytes),
                     0, 0, 0);
  J root;
  offset_sax<J> sax(root, limits);
  bool ok = J::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json, true);
  if (ok && !sax.failure) return root;
  auto failure = sax.failure.value_or(
      typename limited_sax<J>::failed{json_error::kind::syntax, "invalid JSON"});
  std::size_t at = sax.offset;
  if (failure.kind == json_error::kind::too_deep) at = deep_offset(text, limits.max_depth);
  auto [line, column] = position(text, at);
  if (failure.kind == json_error::kind::number) line = column = 0;  // the reason names the number
  throw json_error(failure.kind, std::string(source), std::move(failure.reason), at, line, column);
}

std::string describe(std::string_view source, std::string_view reason, std::size_t line, std::size_t column,
                     bool multiline) {
  std::string where;
  if (line > 0) where = multiline ? fmt::format(" (line {}, column {})", line, column) : fmt::format(" (column {})", column);
  return fmt::format("{}: {}{}", source, reason, where);
}

}  // namespace

json_error::json_error(kind k, std::string src, std::string why, std::size_t at, std::size_t l, std::size_t c)
    : std::runtime_error(describe(src, why, l, c, l > 1)),
      type(k),
      source(std::move(src)),
      reason(std::move(why)),
      offset(at),
      line(l),
      column(c) {}

nlohmann::ordered_json read_json(std::string_view text, std::string_view source, const json_limits& limits) {
  return read<nlohmann::ordered_json>(text, source, limits);
}

nlohmann::json read_json_unordered(std::string_view text, std::string_view source, const json_limits& limits) {
  return read<nlohmann::json>(text, source, limits);
}

value read_json_value(std::string_view text, std::string_view source, const json_limits& limits) {
  auto j = read<nlohmann::ordered_json>(text, source, limits);
  try {
    return from_json(j);
  } catch (const json_error&) {
    throw;
  } catch (const std::exception& e) {  // a malformed $bytes or $tensor object
    throw json_error(json_error::kind::syntax, std::string(source), e.what(), 0, 0, 0);
  }
}

}  // namespace loom
