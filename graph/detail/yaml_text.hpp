// graph/yaml_text.hpp (private): a pre-scan of a YAML file's raw text, before yaml-cpp parses it. It finds
// what the parser reports late or not at all (an unclosed quote, a tab in indentation, binary content,
// nesting deep enough to exhaust the stack), so the loader can point at the line of the mistake.
#pragma once

#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

namespace loom::graph {

struct text_position {
  int line = 1;    // 1-based
  int column = 1;  // 1-based
};

struct quoted_span {
  text_position open;      // the opening quote
  int close_line = 0;      // the line of the closing quote; 0 when never closed
  char quote = '"';
};

struct text_scan {
  std::vector<text_position> indent_tabs;  // tabs in a line's indentation
  std::vector<quoted_span> quotes;         // quoted scalars, in order
  std::vector<text_position> open_brackets;  // `[` or `{` never closed
  std::optional<text_position> too_deep;   // where nesting first went past the limit
};

// Why the text is not UTF-8 text (a NUL byte, an invalid sequence), with where; nullopt for text.
std::optional<std::pair<std::string, text_position>> binary_problem(std::string_view text);

// Rewrites each block-sequence item that starts with an endpoint list, `- [x, y] -> g` (which YAML reads as a
// list followed by junk), into the quoted string `- "[x, y] -> g"`. Returns the 1-based lines rewritten:
// there, a quoted scalar's text starts one column left of where a quoted string's would.
std::vector<int> quote_list_edges(std::string& text);

// Scans YAML text for quotes, brackets, indentation tabs and nesting deeper than `max_depth`.
text_scan scan_yaml_text(std::string_view text, int max_depth);

}  // namespace loom::graph
