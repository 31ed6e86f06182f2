// runtime/state/store_threads.cpp: the threads of `loom serve --state` (store.hpp, docs/durability.md,
// "Threads"): one row per conversation, read before its request runs and replaced after it.
#include <sqlite3.h>

#include <fmt/format.h>

#include "loom/runtime/state/store.hpp"
#include "loom/runtime/state/store_detail.hpp"
#include "loom/runtime/state/value_codec.hpp"

namespace loom::state {

using namespace detail;

namespace {

// A file opened read-only before any read-write open added the table has none: no threads, not an error.
bool has_threads_table(const fs::path& file, sqlite3* db) {
  stmt t(file, db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'threads'");
  return t.step("reading its schema");
}

}  // namespace

std::optional<thread_record> store::read_thread(std::string_view id) const {
  if (!has_threads_table(file_, db_)) return std::nullopt;
  stmt q(file_, db_, "SELECT updated_unix_ms, state FROM threads WHERE id = ?");
  q.bind(1, id);
  if (!q.step("reading a thread")) return std::nullopt;
  thread_record r;
  r.id = std::string(id);
  r.updated_unix_ms = q.i64(0);
  try {
    r.state = decode(q.bytes(1));
  } catch (const decode_error& e) {
    throw error(error::kind::damaged, fmt::format("{} is damaged: thread `{}`: {}", file_.string(), id, e.what()));
  }
  return r;
}

void store::write_thread(std::string_view id, const value& state, std::int64_t now_unix_ms) {
  blob b;
  try {
    b = encode(state);
  } catch (const encode_error& e) {
    throw encode_error(fmt::format("thread `{}`: {}", id, e.what()));
  }
  transaction t(file_, db_);
  stmt q(file_, db_,
         "INSERT INTO threads(id, updated_unix_ms, state) VALUES(?, ?, ?) "
         "ON CONFLICT(id) DO UPDATE SET updated_unix_ms = excluded.updated_unix_ms, state = excluded.state");
  q.bind(1, id).bind(2, now_unix_ms).bind_blob(3, b).run("writing a thread");
  t.commit();
}

std::size_t store::expire_threads(std::int64_t before_unix_ms) {
  stmt q(file_, db_, "DELETE FROM threads WHERE updated_unix_ms < ?");
  q.bind(1, before_unix_ms).run("expiring threads");
  return static_cast<std::size_t>(sqlite3_changes(db_));
}

std::size_t store::thread_count() const {
  if (!has_threads_table(file_, db_)) return 0;
  stmt q(file_, db_, "SELECT count(*) FROM threads");
  q.step("counting threads");
  return static_cast<std::size_t>(q.i64(0));
}

}  // namespace loom::state
