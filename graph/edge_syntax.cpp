// graph/edge_syntax.cpp: a small recursive-descent parser for edge strings (see edge_syntax.hpp).
#include "loom/graph/detail/edge_syntax.hpp"

#include <fmt/format.h>

#include <optional>

namespace loom::graph {

namespace {

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }

class edge_parser {
 public:
  explicit edge_parser(std::string_view text) : text_(text) {}

  std::variant<std::vector<endpoint_group>, edge_syntax_error> edges() {
    std::vector<endpoint_group> groups;
    skip_spaces();
    if (at_end()) return fail("an edge is empty; write `from -> to`");
    while (true) {
      if (at_arrow()) return fail(groups.empty() ? "expected a node before `->`" : "expected a node after `->`");
      auto group = parse_group();
      if (!group) return *error_;
      groups.push_back(std::move(*group));
      skip_spaces();
      if (at_end()) break;
      if (!at_arrow()) return fail(fmt::format("expected `->` or the end of the edge, found `{}`", text_[pos_]));
      pos_ += 2;
      skip_spaces();
      if (at_end()) return fail("expected a node after `->`");
    }
    if (groups.size() < 2) return edge_syntax_error{"an edge needs `->` between two nodes: `from -> to`", 0};
    return groups;
  }

  std::variant<endpoint_text, edge_syntax_error> single() {
    skip_spaces();
    auto e = parse_endpoint();
    if (!e) return *error_;
    skip_spaces();
    if (!at_end()) return fail(fmt::format("unexpected `{}` after the endpoint", text_[pos_]));
    return *e;
  }

 private:
  std::optional<endpoint_group> parse_group() {
    if (text_[pos_] != '[') {
      auto e = parse_endpoint();
      if (!e) return std::nullopt;
      return endpoint_group{std::move(*e)};
    }
    std::size_t open = pos_++;
    endpoint_group group;
    while (true) {
      skip_spaces();
      if (at_end()) return none_at(open, "this `[` is never closed with `]`");
      if (text_[pos_] == ']' && group.empty()) return none("an endpoint list is empty");
      auto e = parse_endpoint();
      if (!e) return std::nullopt;
      group.push_back(std::move(*e));
      skip_spaces();
      if (at_end()) return none_at(open, "this `[` is never closed with `]`");
      if (text_[pos_] == ']') break;
      if (text_[pos_] != ',') return none(fmt::format("expected `,` or `]` in the list, found `{}`", text_[pos_]));
      ++pos_;
    }
    ++pos_;
    return group;
  }

  std::optional<endpoint_text> parse_endpoint() {
    endpoint_text e;
    e.offset = pos_;
    if (at_end() || !name_start(text_[pos_]))
      return none(at_end() ? "expected a node name" : fmt::format("expected a node name, found `{}`", text_[pos_]));
    e.node = read_name();
    if (!at_end() && text_[pos_] == '.') {
      ++pos_;
      if (at_end() || !name_start(text_[pos_]))
        return none(fmt::format("expected a port name after `{}.`", e.node));
      e.port = read_name();
    }
    return e;
  }

  std::string read_name() {
    std::size_t start = pos_;
    while (!at_end() && name_char(text_[pos_]) && !at_arrow()) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  bool at_end() const { return pos_ >= text_.size(); }
  bool at_arrow() const { return pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] == '>'; }
  void skip_spaces() {
    while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  std::nullopt_t none(std::string message) { return none_at(pos_, std::move(message)); }
  std::nullopt_t none_at(std::size_t offset, std::string message) {
    fail_at(offset, std::move(message));
    return std::nullopt;
  }
  edge_syntax_error fail(std::string message) { return fail_at(pos_, std::move(message)); }
  edge_syntax_error fail_at(std::size_t offset, std::string message) {
    error_ = edge_syntax_error{std::move(message), offset};
    return *error_;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::optional<edge_syntax_error> error_;
};

}  // namespace

std::variant<std::vector<endpoint_group>, edge_syntax_error> parse_edge_text(std::string_view text) {
  return edge_parser(text).edges();
}

std::variant<endpoint_text, edge_syntax_error> parse_endpoint_text(std::string_view text) {
  return edge_parser(text).single();
}

bool is_node_name(std::string_view name) {
  if (name.empty() || !name_start(name.front())) return false;
  for (char c : name)
    if (!name_char(c)) return false;
  return true;
}

}  // namespace loom::graph
