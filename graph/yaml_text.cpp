// graph/yaml_text.cpp: the raw-text pre-scan of a YAML file (see yaml_text.hpp). It is a heuristic lexer:
// it knows comments, quotes, flow brackets and block scalars well enough to place errors, nothing more.
#include "loom/graph/detail/yaml_text.hpp"

#include <fmt/format.h>

namespace loom::graph {

std::optional<std::pair<std::string, text_position>> binary_problem(std::string_view text) {
  text_position at;
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == 0) return std::pair{std::string("the file is binary, not YAML text (it holds a NUL byte)"), at};
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    bool valid = extra >= 0 && i + static_cast<std::size_t>(extra) < text.size();
    for (int k = 1; valid && k <= extra; ++k)
      valid = (static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]) & 0xC0) == 0x80;
    if (!valid)
      return std::pair{fmt::format("the file is not UTF-8 text (invalid byte 0x{:02X}); is it binary?", c), at};
    if (c == '\n') {
      ++at.line;
      at.column = 1;
    } else {
      ++at.column;
    }
    i += static_cast<std::size_t>(extra) + 1;
  }
  return std::nullopt;
}

namespace {

// The end of a line's content: before a ` #` comment, without trailing spaces.
std::size_t content_end(std::string_view line) {
  std::size_t end = line.size();
  for (std::size_t i = 1; i < line.size(); ++i)
    if (line[i] == '#' && (line[i - 1] == ' ' || line[i - 1] == '\t')) {
      end = i;
      break;
    }
  while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t' || line[end - 1] == '\r')) --end;
  return end;
}

// The offset of `[` in `  - [x, y] -> g`, or npos when the line is not such an item.
std::size_t list_edge_start(std::string_view line) {
  std::size_t i = line.find_first_not_of(' ');
  if (i == std::string_view::npos || line.compare(i, 2, "- ") != 0) return std::string_view::npos;
  i = line.find_first_not_of(' ', i + 2);
  if (i == std::string_view::npos || line[i] != '[') return std::string_view::npos;
  std::size_t close = line.find(']', i);
  if (close == std::string_view::npos) return std::string_view::npos;
  std::size_t next = line.find_first_not_of(' ', close + 1);
  if (next == std::string_view::npos || line.compare(next, 2, "->") != 0) return std::string_view::npos;
  if (line.find_first_of("\"'\\") != std::string_view::npos) return std::string_view::npos;
  return i;
}

}  // namespace

std::vector<int> quote_list_edges(std::string& text) {
  std::vector<int> lines;
  std::string out;
  out.reserve(text.size() + 16);
  std::size_t pos = 0;
  for (int line_no = 1; pos <= text.size(); ++line_no) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    std::size_t start = list_edge_start(line);
    if (start != std::string_view::npos) {
      std::size_t end = content_end(line);
      out.append(line.substr(0, start)).append("\"").append(line.substr(start, end - start)).append("\"");
      out.append(line.substr(end));
      lines.push_back(line_no);
    } else {
      out.append(line);
    }
    if (eol < text.size()) out.push_back('\n');
    pos = eol + 1;
  }
  if (!lines.empty()) text = std::move(out);
  return lines;
}

namespace {

class scanner {
 public:
  scanner(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

  text_scan run() {
    while (pos_ < text_.size()) scan_line();
    for (const auto& b : brackets_) out_.open_brackets.push_back(b);
    return std::move(out_);
  }

 private:
  // One physical line (or the rest of a multi-line quote that started earlier).
  void scan_line() {
    std::size_t indent = 0;
    while (pos_ + indent < text_.size() && (text_[pos_ + indent] == ' ' || text_[pos_ + indent] == '\t')) {
      if (text_[pos_ + indent] == '\t' && block_indent_ < 0 && brackets_.empty() && !line_is_blank(indent))
        out_.indent_tabs.push_back({line_, static_cast<int>(indent) + 1});
      ++indent;
    }
    if (block_indent_ >= 0) {  // inside a block scalar: skip its more-indented (or blank) lines
      if (line_is_blank(indent) || static_cast<int>(indent) > block_indent_) return skip_line();
      block_indent_ = -1;
    }
    if (brackets_.empty()) track_block_depth(indent);
    column_ = static_cast<int>(indent) + 1;
    pos_ += indent;
    scan_content(static_cast<int>(indent));
  }

  void scan_content(int line_indent) {
    char prev = ' ';
    while (pos_ < text_.size() && text_[pos_] != '\n') {
      char c = text_[pos_];
      bool starts_token = prev == ' ' || prev == '\t' || prev == '[' || prev == '{' || prev == ',' ||
                          prev == ':' || prev == '-' || prev == '?';
      if (c == '#' && (prev == ' ' || prev == '\t')) return skip_line();
      if ((c == '"' || c == '\'') && starts_token) {
        scan_quote(c);
        prev = c;
        continue;
      }
      if ((c == '[' || c == '{') && starts_token) open_bracket();
      if ((c == ']' || c == '}') && !brackets_.empty()) brackets_.pop_back();
      if ((c == '|' || c == '>') && brackets_.empty() && (prev == ' ' || prev == '-') && rest_is_header())
        block_indent_ = line_indent;
      if (c == '-' && starts_token && brackets_.empty() && next_is_space()) bump_depth(1);
      prev = c;
      advance();
    }
    newline();
  }

  void scan_quote(char q) {
    quoted_span span{{line_, column_}, 0, q};
    advance();
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\\' && q == '"' && pos_ + 1 < text_.size()) {
        advance();
        if (text_[pos_] == '\n') newline_in_quote();
        else advance();
        continue;
      }
      if (c == q) {
        if (q == '\'' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\'') {
          advance();
          advance();
          continue;
        }
        span.close_line = line_;
        advance();
        break;
      }
      if (c == '\n') newline_in_quote();
      else advance();
    }
    out_.quotes.push_back(span);
  }

  void open_bracket() {
    brackets_.push_back({line_, column_});
    if (static_cast<int>(brackets_.size()) + line_depth_ > max_depth_ && !out_.too_deep)
      out_.too_deep = text_position{line_, column_};
  }

  // Block nesting: a stack of the indentation of enclosing lines, plus compact `- - -` on one line.
  void track_block_depth(std::size_t indent) {
    if (line_is_blank(indent) || text_[pos_ + indent] == '#') return;
    while (!indents_.empty() && indents_.back() >= static_cast<int>(indent)) indents_.pop_back();
    indents_.push_back(static_cast<int>(indent));
    line_depth_ = static_cast<int>(indents_.size());
    bump_depth(0);
  }

  void bump_depth(int by) {
    line_depth_ += by;
    if (line_depth_ > max_depth_ && !out_.too_deep) out_.too_deep = text_position{line_, column_};
  }

  bool line_is_blank(std::size_t from) const {
    std::size_t p = pos_ + from;
    return p >= text_.size() || text_[p] == '\n' || text_[p] == '\r';
  }
  bool next_is_space() const {
    return pos_ + 1 >= text_.size() || text_[pos_ + 1] == ' ' || text_[pos_ + 1] == '\n';
  }
  // After `|` or `>`: only chomping/indent indicators, then the end of the line or a comment.
  bool rest_is_header() const {
    for (std::size_t p = pos_ + 1; p < text_.size() && text_[p] != '\n'; ++p) {
      char c = text_[p];
      if (c == '#') return true;
      if (c != '+' && c != '-' && c != ' ' && c != '\r' && !(c >= '1' && c <= '9')) return false;
    }
    return true;
  }
  void advance() {
    ++pos_;
    ++column_;
  }
  void newline() {
    if (pos_ < text_.size()) ++pos_;
    ++line_;
    column_ = 1;
  }
  void newline_in_quote() {
    ++pos_;
    ++line_;
    column_ = 1;
  }
  void skip_line() {
    while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
    newline();
  }

  std::string_view text_;
  int max_depth_;
  std::size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
  int block_indent_ = -1;  // indentation of the line that opened a block scalar; -1 outside one
  int line_depth_ = 0;
  std::vector<int> indents_;
  std::vector<text_position> brackets_;
  text_scan out_;
};

}  // namespace

text_scan scan_yaml_text(std::string_view text, int max_depth) { return scanner(text, max_depth).run(); }

}  // namespace loom::graph
