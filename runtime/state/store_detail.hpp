// runtime/state/store_detail.hpp (private): what the store's files share: SQLite result codes as
// state::errors, a prepared statement, a transaction, and the checks of a file's first bytes and stamp.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "loom/runtime/state/store.hpp"

namespace loom::state::detail {

namespace fs = std::filesystem;

// A SQLite result code as a state::error naming the file and what was being done.
[[noreturn]] void fail(const fs::path& file, sqlite3* db, int rc, std::string_view doing);

// One prepared statement; reset and cleared for each use.
class stmt {
 public:
  stmt(const fs::path& file, sqlite3* db, const char* sql) : file_(file), db_(db) {
    int rc = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr);
    if (rc != SQLITE_OK) fail(file, db, rc, "preparing a statement");
  }
  ~stmt() { sqlite3_finalize(s_); }
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;

  stmt& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  stmt& bind(int i, std::string_view t) {
    check(sqlite3_bind_text64(s_, i, t.data(), t.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  stmt& bind_blob(int i, const void* p, std::size_t n) {
    // A zero-length blob still binds as a blob, not NULL (the columns are NOT NULL).
    check(n == 0 ? sqlite3_bind_zeroblob(s_, i, 0) : sqlite3_bind_blob64(s_, i, p, n, SQLITE_TRANSIENT));
    return *this;
  }
  stmt& bind_blob(int i, const blob& b) { return bind_blob(i, b.data(), b.size()); }

  // True when a row is ready; false when done.
  bool step(std::string_view doing) {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(file_, db_, rc, doing);
  }
  // Steps to the end and resets, so the statement can be bound and run again.
  void run(std::string_view doing) {
    while (step(doing)) {
    }
    reset();
  }
  void reset() { sqlite3_reset(s_); }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  std::string text(int c) const {
    const auto* p = sqlite3_column_blob(s_, c);  // the bytes as stored, NULs included
    auto n = static_cast<std::size_t>(sqlite3_column_bytes(s_, c));
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }
  std::span<const std::byte> bytes(int c) const {
    const auto* p = sqlite3_column_blob(s_, c);
    auto n = static_cast<std::size_t>(sqlite3_column_bytes(s_, c));
    return p ? std::span<const std::byte>(static_cast<const std::byte*>(p), n) : std::span<const std::byte>();
  }
  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(file_, db_, rc, "binding a value");
  }
  const fs::path& file_;
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

void exec(const fs::path& file, sqlite3* db, const char* sql, std::string_view doing);

std::int64_t pragma_int(const fs::path& file, sqlite3* db, const char* sql, std::string_view doing);


// A transaction that rolls back unless committed.
class transaction {
 public:
  transaction(const fs::path& file, sqlite3* db) : file_(file), db_(db) {
    exec(file, db, "BEGIN IMMEDIATE", "starting a transaction");
  }
  ~transaction() {
    if (db_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(file_, db_, "COMMIT", "committing");
    db_ = nullptr;
  }

 private:
  const fs::path& file_;
  sqlite3* db_;
};

// The first bytes of the file, before SQLite sees it: a text file or an empty one is refused as not loom's,
// a SQLite file cut shorter than its own header as damaged.
void check_header(const fs::path& file);

// application_id and user_version, read by a connection that changes nothing.
void check_stamp(const fs::path& file);

}  // namespace loom::state::detail
