// actors/tools/fts_index.cpp: the SQLite FTS5 index behind tool.retrieve (see fts_index.hpp).
#include "loom/actors/tools/fts_index.hpp"

#include "loom/runtime/json_reader.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace loom::actors {
namespace {

// A prepared statement, finalized on scope exit.
struct statement {
  sqlite3_stmt* s = nullptr;
  statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
      throw std::runtime_error(fmt::format("sqlite: {}", sqlite3_errmsg(db)));
  }
  ~statement() { sqlite3_finalize(s); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
};

void bind_text(sqlite3_stmt* s, int i, std::string_view t) {
  sqlite3_bind_text(s, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
}

std::string column_text(sqlite3_stmt* s, int i) {
  const auto* p = sqlite3_column_text(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : "";
}

std::string trim(std::string s) {
  auto ws = [](unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && ws(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

void read_paragraphs(const std::filesystem::path& file, const std::string& source, std::vector<passage>& out) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("retrieve: cannot read {}", file.string()));
  std::string line, para;
  auto flush = [&] {
    std::string t = trim(para);
    bool heading_only = !t.empty() && t[0] == '#' && t.find('\n') == std::string::npos;  // a title, not a passage
    if (!t.empty() && !heading_only) out.push_back({t, source, 0});
    para.clear();
  };
  while (std::getline(in, line)) {
    if (trim(line).empty()) flush();
    else para += line + "\n";
  }
  flush();
}

void read_jsonl(const std::filesystem::path& file, std::vector<passage>& out) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("retrieve: cannot read {}", file.string()));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (trim(line).empty()) continue;
    nlohmann::json j;
    try {
      j = read_json_unordered(line, "line");
    } catch (const json_error& e) {
      throw std::runtime_error(fmt::format("retrieve: {}:{}: expected a JSON object with a string `text` ({})",
                                           file.string(), n, e.reason));
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      throw std::runtime_error(fmt::format("retrieve: {}:{}: expected a JSON object with a string `text`", file.string(), n));
    std::string source = j.contains("source") && j["source"].is_string() ? j["source"].get<std::string>()
                                                                         : fmt::format("{}:{}", file.filename().string(), n);
    out.push_back({j["text"].get<std::string>(), source, 0});
  }
}

}  // namespace

fts_index::fts_index() {
  if (sqlite3_open(":memory:", &db_) != SQLITE_OK) {
    sqlite3_close(db_);
    throw std::runtime_error("sqlite: cannot open an in-memory database");
  }
  try {
    exec("CREATE VIRTUAL TABLE t USING fts5(text, source, tokenize = 'porter unicode61')");
  } catch (const std::exception& e) {
    sqlite3_close(db_);
    throw std::runtime_error(std::string(e.what()) + " (is FTS5 compiled into this SQLite?)");
  }
}

fts_index::~fts_index() { sqlite3_close(db_); }

void fts_index::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error("sqlite: " + msg);
  }
}

void fts_index::add(std::string_view text, std::string_view source) {
  statement st(db_, "INSERT INTO t(text, source) VALUES (?, ?)");
  bind_text(st.s, 1, text);
  bind_text(st.s, 2, source);
  if (sqlite3_step(st.s) != SQLITE_DONE) throw std::runtime_error(fmt::format("sqlite: {}", sqlite3_errmsg(db_)));
  ++size_;
}

std::string fts_match_expression(std::string_view query) {
  std::string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    out += (out.empty() ? "\"" : " OR \"") + word + "\"";
    word.clear();
  };
  for (char c : query) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u >= 0x80) word += c;
    else flush();
  }
  flush();
  return out;
}

std::vector<passage> fts_index::search(std::string_view query, std::size_t k) const {
  std::string match = fts_match_expression(query);
  if (match.empty() || k == 0) return {};
  statement st(db_, "SELECT text, source, bm25(t) FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT ?");
  bind_text(st.s, 1, match);
  sqlite3_bind_int64(st.s, 2, static_cast<sqlite3_int64>(k));
  std::vector<passage> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
    out.push_back({column_text(st.s, 0), column_text(st.s, 1), -sqlite3_column_double(st.s, 2)});
  if (rc != SQLITE_DONE) throw std::runtime_error(fmt::format("sqlite: {}", sqlite3_errmsg(db_)));
  return out;
}

std::vector<passage> read_corpus(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path root(path);
  std::vector<passage> out;
  if (fs::is_directory(root, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(root, ec)) {
      auto ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".txt" || ext == ".md")) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) read_paragraphs(f, fs::relative(f, root).generic_string(), out);
    if (files.empty()) throw std::runtime_error(fmt::format("retrieve: corpus folder {} has no .txt or .md file", path));
  } else if (fs::is_regular_file(root, ec) && root.extension() == ".jsonl") {
    read_jsonl(root, out);
  } else if (fs::exists(root, ec)) {
    throw std::runtime_error(fmt::format("retrieve: corpus {} is neither a folder nor a .jsonl file", path));
  } else {
    throw std::runtime_error(fmt::format("retrieve: corpus {} does not exist", path));
  }
  return out;
}

}  // namespace loom::actors
