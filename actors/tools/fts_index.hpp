// actors/tools/fts_index.hpp: internal to loom_actors. An in-memory SQLite FTS5 full-text index of passages,
// ranked with bm25; what tool.retrieve searches.
#pragma once

#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace loom::actors {

struct passage {
  std::string text;
  std::string source;
  double score = 0;  // -bm25: higher is a better match
};

class fts_index {
 public:
  fts_index();  // throws std::runtime_error when SQLite lacks FTS5
  ~fts_index();
  fts_index(const fts_index&) = delete;
  fts_index& operator=(const fts_index&) = delete;

  void add(std::string_view text, std::string_view source);
  std::size_t size() const { return size_; }
  // The best `k` passages for the words of `query`, best first. Any text is a safe query: it becomes a
  // MATCH expression of quoted words joined by OR; a query with no words finds nothing.
  std::vector<passage> search(std::string_view query, std::size_t k) const;

 private:
  void exec(const char* sql);
  sqlite3* db_ = nullptr;
  std::size_t size_ = 0;
};

// The FTS5 MATCH expression for free text: each word (letters, digits, and any non-ASCII byte) in double
// quotes, joined with OR; empty when there is no word. "permits? (Paris)" -> "\"permits\" OR \"Paris\"".
std::string fts_match_expression(std::string_view query);

// Reads a corpus: a folder of .txt/.md files (one passage per paragraph, paragraphs separated by blank
// lines; a paragraph that is only a markdown heading is skipped; source = the file's path relative to the folder), or a .jsonl file of {text, source?} objects
// (source defaults to FILE:LINE). Throws std::runtime_error naming the path (and line) on a missing or bad
// corpus.
std::vector<passage> read_corpus(const std::string& path);

}  // namespace loom::actors
