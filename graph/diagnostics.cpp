// graph/diagnostics.cpp: collecting, sorting and printing diagnostics; "did you mean" suggestions.
#include "loom/graph/diagnostics.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <tuple>

namespace loom::graph {

std::string diagnostic::str() const {
  std::string out = fmt::format("{}: {}: {}", where.str(), level == severity::error ? "error" : "warning",
                                message);
  if (!hint.empty()) out += "\n  hint: " + hint;
  return out;
}

void diagnostics::error(location where, std::string message, std::string hint) {
  items_.push_back({diagnostic::severity::error, std::move(where), std::move(message), std::move(hint)});
}

void diagnostics::warning(location where, std::string message, std::string hint) {
  items_.push_back({diagnostic::severity::warning, std::move(where), std::move(message), std::move(hint)});
}

bool diagnostics::has_errors() const { return error_count() > 0; }

std::size_t diagnostics::error_count() const {
  return static_cast<std::size_t>(std::count_if(items_.begin(), items_.end(), [](const diagnostic& d) {
    return d.level == diagnostic::severity::error;
  }));
}

std::string diagnostics::str() const {
  std::vector<const diagnostic*> sorted;
  for (const auto& d : items_) sorted.push_back(&d);
  auto key = [](const diagnostic* d) {
    return std::make_tuple(d->where.file ? *d->where.file : std::string(), d->where.line, d->where.column);
  };
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](const diagnostic* a, const diagnostic* b) { return key(a) < key(b); });
  std::string out;
  for (const auto* d : sorted) out += d->str() + "\n";
  return out;
}

namespace {

// Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::string_view after_dot(std::string_view s) {
  auto dot = s.rfind('.');
  return dot == std::string_view::npos ? s : s.substr(dot + 1);
}

}  // namespace

std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.empty() || word.size() > 256) return {};
  std::string best;
  std::size_t best_distance = 0;
  for (const auto& c : candidates) {
    if (c.size() > 256) continue;
    std::size_t d = edit_distance(word, c);
    // "sequence" for "source.sequence": the family was left out (or another family was written).
    if (word != c && (after_dot(c) == word || (after_dot(word) == after_dot(c) && after_dot(c) != c)))
      d = std::min<std::size_t>(d, 1);
    std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
    if (d <= limit && (best.empty() || d < best_distance)) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::string suggest(std::string_view word, const std::vector<std::string>& candidates) {
  if (candidates.empty()) return {};
  std::string best = closest(word, candidates);
  if (!best.empty()) return fmt::format("did you mean `{}`?", best);
  return fmt::format("expected one of: {}", fmt::join(candidates, ", "));
}

}  // namespace loom::graph
