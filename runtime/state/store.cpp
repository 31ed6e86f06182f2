// runtime/state/store.cpp: opening and checking the state file (store.hpp, docs/durability.md): its schema
// and pragmas, the refusals of a file that is not loom's, newer or damaged, its integrity check, and the
// fingerprints a resume compares. Writing is store_write.cpp, reading store_read.cpp, the lock store_lock.cpp.
#include "loom/runtime/state/store.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>

#include "loom/runtime/state/store_detail.hpp"

namespace loom::state {

namespace fs = std::filesystem;
using namespace detail;

const char* phase_name(phase p) {
  switch (p) {
    case phase::not_started: return "not_started";
    case phase::running: return "running";
    case phase::finishing: return "finishing";
    case phase::finished: return "finished";
  }
  return "?";
}

namespace {

constexpr const char* schema_sql = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE snapshots(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  epoch INTEGER NOT NULL,
  taken_unix_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  complete INTEGER NOT NULL DEFAULT 0,
  pinned INTEGER NOT NULL DEFAULT 0,
  progress TEXT NOT NULL DEFAULT '');
CREATE TABLE parts(
  snapshot INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
  instance INTEGER NOT NULL,
  phase INTEGER NOT NULL,
  checkpoint BLOB NOT NULL,
  replay BLOB NOT NULL,
  closed BLOB NOT NULL,
  PRIMARY KEY(snapshot, instance));
CREATE TABLE links(
  snapshot INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
  link INTEGER NOT NULL,
  side INTEGER NOT NULL,
  count INTEGER NOT NULL,
  eos INTEGER NOT NULL,
  ended INTEGER NOT NULL DEFAULT 0,
  vals BLOB NOT NULL,
  PRIMARY KEY(snapshot, link, side));
CREATE TABLE pending(
  snapshot INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
  instance INTEGER NOT NULL,
  id INTEGER NOT NULL,
  node TEXT NOT NULL,
  shown BLOB NOT NULL,
  asked_unix_ms INTEGER NOT NULL,
  deadline_unix_ms INTEGER NOT NULL,
  PRIMARY KEY(snapshot, instance, id));
CREATE TABLE decisions(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  instance INTEGER NOT NULL,
  id INTEGER NOT NULL,
  verdict TEXT NOT NULL CHECK(verdict IN ('approve', 'reject', 'edit')),
  value BLOB,
  reason TEXT,
  by TEXT,
  at_unix_ms INTEGER NOT NULL,
  UNIQUE(instance, id));
)sql";

// Added after state version 1 without a new version: a file without it is still read (a read-write open
// adds it), and an older loom that meets it ignores it (it checks only for its own tables).
constexpr const char* threads_sql = R"sql(
CREATE TABLE IF NOT EXISTS threads(
  id TEXT PRIMARY KEY,
  updated_unix_ms INTEGER NOT NULL,
  state BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS threads_by_age ON threads(updated_unix_ms);
)sql";

constexpr std::array<const char*, 6> tables = {"meta", "snapshots", "parts", "links", "pending", "decisions"};

sqlite3* open_db(const fs::path& file, int flags) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    if ((rc & 0xFF) == SQLITE_NOTADB)
      throw error(error::kind::foreign, fmt::format("{} is not a loom state file ({})", file.string(), msg));
    throw error(error::kind::io, fmt::format("{}: cannot open: {}", file.string(), msg));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 10000);
  return db;
}

// Closes on scope exit unless released.
struct db_guard {
  sqlite3* db;
  ~db_guard() { sqlite3_close(db); }
  sqlite3* release() { return std::exchange(db, nullptr); }
};

}  // namespace

namespace detail {

// A SQLite result code as a state::error naming the file and what was being done.
[[noreturn]] void fail(const fs::path& file, sqlite3* db, int rc, std::string_view doing) {
  std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xFF) {
    case SQLITE_CORRUPT:
      throw error(error::kind::damaged, fmt::format("{} is damaged: {} (while {})", file.string(), msg, doing));
    case SQLITE_NOTADB:
      throw error(error::kind::foreign, fmt::format("{} is not a loom state file ({})", file.string(), msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      throw error(error::kind::io, fmt::format("{} is busy: {}: {}", file.string(), doing, msg));
    default: throw error(error::kind::io, fmt::format("{}: {}: {}", file.string(), doing, msg));
  }
}

void exec(const fs::path& file, sqlite3* db, const char* sql, std::string_view doing) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) fail(file, db, rc, doing);
}

std::int64_t pragma_int(const fs::path& file, sqlite3* db, const char* sql, std::string_view doing) {
  stmt q(file, db, sql);
  if (!q.step(doing)) throw error(error::kind::io, fmt::format("{}: `{}` gave no row", file.string(), sql));
  return q.i64(0);
}

// The first bytes of the file, before SQLite sees it: a text file or an empty one is refused as not loom's,
// a SQLite file cut shorter than its own header as damaged.
void check_header(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw error(error::kind::io, fmt::format("{}: cannot read: {}", file.string(), std::strerror(errno)));
  std::array<char, 100> h{};
  in.read(h.data(), h.size());
  auto n = static_cast<std::size_t>(in.gcount());
  static constexpr char magic[] = "SQLite format 3";  // 16 bytes with its NUL
  if (n < sizeof magic || std::memcmp(h.data(), magic, sizeof magic) != 0)
    throw error(error::kind::foreign,
                fmt::format("{} is not a loom state file ({})", file.string(),
                            n == 0 ? "it is empty" : "it is not a SQLite database"));
  if (n < h.size())
    throw error(error::kind::damaged, fmt::format("{} is damaged: it is {} bytes long, shorter than a SQLite header",
                                                  file.string(), n));
}

// application_id and user_version, read by a connection that changes nothing.
void check_stamp(const fs::path& file) {
  db_guard g{open_db(file, SQLITE_OPEN_READONLY)};
  auto app = static_cast<std::uint32_t>(pragma_int(file, g.db, "PRAGMA application_id", "reading its stamp"));
  if (app != application_id)
    throw error(error::kind::foreign,
                fmt::format("{} is not a loom state file (a SQLite database {})", file.string(),
                            app == 0 ? std::string("without an application id")
                                     : fmt::format("of another program: application_id {:#010x}", app)));
  auto version = pragma_int(file, g.db, "PRAGMA user_version", "reading its stamp");
  if (version > state_version)
    throw error(error::kind::newer,
                fmt::format("{} was written by a newer loom (state version {}; this loom reads up to {})",
                            file.string(), version, state_version));
  if (version < 1)
    throw error(error::kind::damaged,
                fmt::format("{} is damaged: its state version is {} (loom writes 1 to {})", file.string(), version,
                            state_version));
}

}  // namespace detail

namespace {

void set_pragmas(const fs::path& file, sqlite3* db) {
  exec(file, db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA journal_size_limit=8388608;",
       "setting its pragmas");
  stmt q(file, db, "PRAGMA journal_mode=WAL");
  if (!q.step("setting WAL mode") || q.text(0) != "wal")
    throw error(error::kind::io, fmt::format("{}: SQLite refused WAL mode", file.string()));
}

void check_integrity(const fs::path& file, sqlite3* db) {
  stmt q(file, db, "PRAGMA integrity_check(4)");
  std::string first;
  int problems = 0;
  while (q.step("checking its integrity")) {
    // A row may hold several lines ("*** in database main ***\nPage 7: ..."): each line but the heading is a problem.
    std::string row = q.text(0);
    std::string_view rest = row;
    while (!rest.empty()) {
      auto nl = rest.find('\n');
      auto line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (line.empty() || line == "ok" || line.starts_with("***")) continue;
      if (problems++ == 0) first = line;
    }
  }
  if (problems > 0)
    throw error(error::kind::damaged,
                fmt::format("{} is damaged: SQLite's integrity check says: {}{}", file.string(), first,
                            problems > 1 ? fmt::format(" (and {} more)", problems - 1) : std::string()));
  stmt t(file, db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?");
  for (const char* name : tables) {
    t.bind(1, std::string_view(name));
    bool found = t.step("reading its schema");
    t.reset();
    if (!found)
      throw error(error::kind::damaged, fmt::format("{} is damaged: it has no table `{}`", file.string(), name));
  }
}

}  // namespace

// ------------------------------------------------------------------------------------------------- store

store::store(fs::path dir, sqlite3* db, access a)
    : dir_(std::move(dir)), file_(dir_ / state_file_name), db_(db), access_(a) {
  if (const char* k = std::getenv(crash_env)) crash_after_ = std::strtol(k, nullptr, 10);
}

store::store(store&& o) noexcept
    : dir_(std::move(o.dir_)), file_(std::move(o.file_)), db_(std::exchange(o.db_, nullptr)), access_(o.access_),
      crash_after_(o.crash_after_), rows_(o.rows_) {}

store& store::operator=(store&& o) noexcept {
  if (this != &o) {
    sqlite3_close(db_);
    dir_ = std::move(o.dir_);
    file_ = std::move(o.file_);
    db_ = std::exchange(o.db_, nullptr);
    access_ = o.access_;
    crash_after_ = o.crash_after_;
    rows_ = o.rows_;
  }
  return *this;
}

store::~store() { sqlite3_close(db_); }

store store::create(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw error(error::kind::io, fmt::format("{}: cannot make the directory: {}", dir.string(), ec.message()));
  auto file = dir / state_file_name;
  if (fs::exists(file) && fs::file_size(file, ec) > 0)
    throw error(error::kind::exists, fmt::format("{} already holds a run's state", file.string()));
  // A WAL left without its database belongs to nothing now.
  fs::remove(fs::path(file.string() + "-wal"), ec);
  fs::remove(fs::path(file.string() + "-shm"), ec);
  db_guard g{open_db(file, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)};
  exec(file, g.db, "PRAGMA auto_vacuum=INCREMENTAL", "setting auto_vacuum");  // before the first table
  set_pragmas(file, g.db);
  {
    transaction t(file, g.db);
    exec(file, g.db, schema_sql, "creating its tables");
    exec(file, g.db, threads_sql, "creating its tables");
    exec(file, g.db, fmt::format("PRAGMA application_id={}; PRAGMA user_version={};", application_id, state_version).c_str(),
         "stamping it");
    t.commit();
  }
  // The stamp into the database file itself, not only the WAL.
  exec(file, g.db, "PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing");
  return store(dir, g.release(), access::read_write);
}

store store::open(const fs::path& dir, access a) {
  auto file = dir / state_file_name;
  std::error_code ec;
  if (!fs::exists(file, ec))
    throw error(error::kind::missing, fmt::format("{} holds no loom state (no {})", dir.string(), state_file_name));
  check_header(file);
  check_stamp(file);
  db_guard g{open_db(file, a == access::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE)};
  if (a == access::read_write)
    set_pragmas(file, g.db);
  else
    exec(file, g.db, "PRAGMA query_only=ON", "setting its pragmas");
  check_integrity(file, g.db);
  if (a == access::read_write) exec(file, g.db, threads_sql, "adding the threads table");
  return store(dir, g.release(), a);
}

std::uintmax_t store::bytes_on_disk() const {
  std::uintmax_t n = 0;
  std::error_code ec;
  for (const char* suffix : {"", "-wal"}) {
    auto s = fs::file_size(fs::path(file_.string() + suffix), ec);
    if (!ec) n += s;
  }
  return n;
}

// ----------------------------------------------------------------------------------------- fingerprints

std::optional<std::string> first_difference(std::string_view stored, std::string_view ours, std::string_view what,
                                            std::string_view ours_name) {
  if (stored == ours) return std::nullopt;
  auto next_line = [](std::string_view& rest) {
    auto nl = rest.find('\n');
    auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    return line;
  };
  std::string_view a = stored, b = ours;
  for (std::size_t line = 1;; ++line) {
    bool more_a = !a.empty(), more_b = !b.empty();
    if (!more_a && !more_b) break;
    auto la = next_line(a), lb = next_line(b);
    if (more_a && more_b && la == lb) continue;
    if (!more_a)
      return fmt::format("{} differ at line {}: {} has `{}`, the state file has nothing there", what, line, ours_name, lb);
    if (!more_b)
      return fmt::format("{} differ at line {}: the state file has `{}`, {} has nothing there", what, line, la, ours_name);
    return fmt::format("{} differ at line {}: the state file has `{}`, {} has `{}`", what, line, la, ours_name, lb);
  }
  return fmt::format("{} differ", what);  // only in line endings
}

void require_same(const fs::path& file, std::string_view stored, std::string_view ours, std::string_view what) {
  if (auto d = first_difference(stored, ours, what))
    throw error(error::kind::mismatch, fmt::format("{} cannot be resumed by this loom: {}", file.string(), *d));
}

}  // namespace loom::state
