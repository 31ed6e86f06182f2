// graph/diagnostics.hpp: the errors a user sees about a graph or cluster file. Each carries where
// (FILE:LINE:COL), what is wrong, and a hint where one helps. Loading and validation collect every
// error of a file in one pass into a `diagnostics` list instead of stopping at the first.
#pragma once

#include <string>
#include <vector>

#include "loom/graph/location.hpp"

namespace loom::graph {

struct diagnostic {
  enum class severity { error, warning };
  severity level = severity::error;
  location where;
  std::string message;  // what is wrong, with what was expected and what was found
  std::string hint;     // optional: "did you mean `source.sequence`?", the valid ports, ...

  // "FILE:LINE:COL: error: MESSAGE" and, when there is a hint, "\n  hint: HINT".
  std::string str() const;
};

class diagnostics {
 public:
  void error(location where, std::string message, std::string hint = {});
  void warning(location where, std::string message, std::string hint = {});

  bool has_errors() const;
  std::size_t error_count() const;
  const std::vector<diagnostic>& all() const { return items_; }
  // Sorted by file, line and column; one per line.
  std::string str() const;

 private:
  std::vector<diagnostic> items_;
};

// A hint naming the closest candidate to `word` ("did you mean `x`?"), or the list of candidates when none
// is close ("expected one of: a, b, c"). Empty when there are no candidates.
std::string suggest(std::string_view word, const std::vector<std::string>& candidates);
// The closest candidate within a small edit distance, or empty.
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace loom::graph
