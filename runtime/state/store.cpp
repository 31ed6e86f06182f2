// runtime/state/store.cpp: the state file on SQLite (store.hpp, docs/durability.md).
#include "loom/runtime/state/store.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>

#include "loom/runtime/state/value_codec.hpp"

namespace loom::state {

namespace fs = std::filesystem;

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
  instance INTEGER NOT NULL,
  id INTEGER NOT NULL,
  verdict TEXT NOT NULL CHECK(verdict IN ('approve', 'reject', 'edit')),
  value BLOB,
  reason TEXT,
  by TEXT,
  at_unix_ms INTEGER NOT NULL,
  PRIMARY KEY(instance, id));
)sql";

constexpr std::array<const char*, 6> tables = {"meta", "snapshots", "parts", "links", "pending", "decisions"};


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

std::string hostname() {
  std::array<char, 256> h{};
  if (gethostname(h.data(), h.size() - 1) != 0) return "?";
  return h.data();
}

int open_lock_file(const fs::path& dir) {
  auto path = dir / lock_file_name;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw error(error::kind::io, fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  return fd;
}

// flock(LOCK_EX | LOCK_NB) on DIR/lock: the fd when taken, -1 when another process holds it.
int try_lock(const fs::path& dir) {
  int fd = open_lock_file(dir);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return -1;
    throw error(error::kind::io,
                fmt::format("{}: cannot lock: {}", (dir / lock_file_name).string(), std::strerror(e)));
  }
  return fd;
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
  return store(dir, g.release(), a);
}

void store::drop(const fs::path& dir) {
  auto file = dir / state_file_name;
  std::error_code ec;
  if (!fs::exists(file, ec))
    throw error(error::kind::missing, fmt::format("{} holds no loom state (no {})", dir.string(), state_file_name));
  check_header(file);  // never deletes a file that is not loom's; a damaged one may go
  try {
    check_stamp(file);
  } catch (const error& e) {
    if (e.why != error::kind::damaged) throw;
  }
  int fd = try_lock(dir);
  if (fd < 0)
    throw error(error::kind::held, fmt::format("{} belongs to a live run; stop it before dropping its state", dir.string()));
  run_lock held_while_removing(fd);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::remove(fs::path(file.string() + suffix), ec);
    if (ec) throw error(error::kind::io, fmt::format("{}{}: cannot remove: {}", file.string(), suffix, ec.message()));
  }
  fs::remove(dir / lock_file_name, ec);
  fs::remove(dir, ec);  // only when empty; a DIR that holds other files stays
}

bool store::held(const fs::path& dir) {
  int fd = try_lock(dir);
  if (fd < 0) return true;
  ::close(fd);
  return false;
}

void store::crash_point() {
  if (crash_after_ > 0 && ++rows_ == crash_after_) ::kill(::getpid(), SIGKILL);
}

std::int64_t store::write(const snapshot& s, std::size_t keep) {
  if (keep < 1) throw std::invalid_argument("state::store::write: keep must be at least 1");
  transaction t(file_, db_);
  std::int64_t id = 0;
  {
    stmt q(file_, db_, "INSERT INTO snapshots(epoch, taken_unix_ms, reason, complete, pinned, progress) VALUES(?, ?, ?, 0, 0, ?)");
    q.bind(1, static_cast<std::int64_t>(s.info.epoch)).bind(2, s.info.taken_unix_ms).bind(3, s.info.reason);
    q.bind(4, s.info.progress).run("writing a snapshot");
    id = sqlite3_last_insert_rowid(db_);
    crash_point();
  }
  auto encoded = [&](const auto& what, auto&& make) {
    try {
      return make();
    } catch (const encode_error& e) {
      throw encode_error(fmt::format("{}: {}", what(), e.what()));
    }
  };
  {
    stmt q(file_, db_, "INSERT INTO parts(snapshot, instance, phase, checkpoint, replay, closed) VALUES(?, ?, ?, ?, ?, ?)");
    for (const auto& p : s.parts) {
      auto name = [&](const char* field) { return [&, field] { return fmt::format("instance {}'s {}", p.instance, field); }; };
      auto c = encoded(name("checkpoint"), [&] { return encode(p.checkpoint); });
      auto r = encoded(name("replay"), [&] { return encode(p.replay); });
      auto cl = encoded(name("closed ports"), [&] { return encode(p.closed); });
      q.bind(1, id).bind(2, std::int64_t{p.instance}).bind(3, static_cast<std::int64_t>(p.phase));
      q.bind_blob(4, c).bind_blob(5, r).bind_blob(6, cl).run("writing a part");
      crash_point();
    }
  }
  {
    stmt q(file_, db_, "INSERT INTO links(snapshot, link, side, count, eos, ended, vals) VALUES(?, ?, ?, ?, ?, ?, ?)");
    for (const auto& l : s.links) {
      auto v = encoded([&] { return fmt::format("link {}'s values", l.link); }, [&] { return encode_list(l.values); });
      q.bind(1, id).bind(2, std::int64_t{l.link}).bind(3, static_cast<std::int64_t>(l.side));
      q.bind(4, static_cast<std::int64_t>(l.values.size())).bind(5, std::int64_t{l.eos ? 1 : 0});
      q.bind(6, std::int64_t{l.ended ? 1 : 0}).bind_blob(7, v).run("writing a link");
      crash_point();
    }
  }
  {
    stmt q(file_, db_,
           "INSERT INTO pending(snapshot, instance, id, node, shown, asked_unix_ms, deadline_unix_ms) VALUES(?, ?, ?, ?, ?, ?, ?)");
    for (const auto& d : s.pending) {
      auto v = encoded([&] { return fmt::format("decision {} of instance {}", d.id, d.instance); },
                       [&] { return encode(d.shown); });
      q.bind(1, id).bind(2, std::int64_t{d.instance}).bind(3, static_cast<std::int64_t>(d.id)).bind(4, d.node);
      q.bind_blob(5, v).bind(6, d.asked_unix_ms).bind(7, d.deadline_unix_ms).run("writing a pending decision");
      crash_point();
    }
  }
  stmt(file_, db_, "UPDATE snapshots SET complete = 1 WHERE id = ?").bind(1, id).run("writing a snapshot");
  // Prune: keep the newest `keep` complete unpinned snapshots (and every pinned one); the rows of the others
  // go by ON DELETE CASCADE.
  stmt(file_, db_,
       "DELETE FROM snapshots WHERE pinned = 0 AND id NOT IN "
       "(SELECT id FROM snapshots WHERE pinned = 0 AND complete = 1 ORDER BY id DESC LIMIT ?)")
      .bind(1, static_cast<std::int64_t>(keep))
      .run("pruning old snapshots");
  // Freed pages are reused by the next snapshot; give them back to the file system only when most of the
  // file is free (a snapshot much smaller than the ones before).
  auto free_pages = pragma_int(file_, db_, "PRAGMA freelist_count", "pruning old snapshots");
  if (free_pages > 256 && free_pages * 2 > pragma_int(file_, db_, "PRAGMA page_count", "pruning old snapshots"))
    exec(file_, db_, "PRAGMA incremental_vacuum", "giving back free pages");
  t.commit();
  return id;
}

std::vector<snapshot_info> store::list() const {
  std::vector<snapshot_info> out;
  stmt q(file_, db_, "SELECT id, epoch, taken_unix_ms, reason, pinned, progress FROM snapshots WHERE complete = 1 ORDER BY id");
  while (q.step("listing snapshots"))
    out.push_back({q.i64(0), static_cast<std::uint64_t>(q.i64(1)), q.i64(2), q.text(3), q.i64(4) != 0, q.text(5)});
  return out;
}

std::optional<std::int64_t> store::latest_id() const {
  stmt q(file_, db_, "SELECT max(id) FROM snapshots WHERE complete = 1");
  if (!q.step("finding the latest snapshot") || q.is_null(0)) return std::nullopt;
  return q.i64(0);
}

snapshot store::read_latest() const {
  auto id = latest_id();
  if (!id) throw error(error::kind::damaged, fmt::format("{} is damaged: it holds no complete snapshot", file_.string()));
  return read(*id);
}

snapshot store::read(std::int64_t id) const {
  snapshot s;
  {
    stmt q(file_, db_, "SELECT id, epoch, taken_unix_ms, reason, pinned, progress FROM snapshots WHERE id = ? AND complete = 1");
    q.bind(1, id);
    if (!q.step("reading a snapshot"))
      throw error(error::kind::missing, fmt::format("{} holds no complete snapshot {}", file_.string(), id));
    s.info = {q.i64(0), static_cast<std::uint64_t>(q.i64(1)), q.i64(2), q.text(3), q.i64(4) != 0, q.text(5)};
  }
  auto damaged = [&](const std::string& where, const std::string& what) {
    return error(error::kind::damaged, fmt::format("{} is damaged: snapshot {}, {}: {}", file_.string(), id, where, what));
  };
  auto value_of = [&](std::span<const std::byte> b, const std::string& where) {
    try {
      return decode(b);
    } catch (const decode_error& e) {
      throw damaged(where, e.what());
    }
  };
  auto u32 = [&](std::int64_t v, const std::string& what) {
    if (v < 0 || v > std::int64_t{UINT32_MAX}) throw damaged(what, fmt::format("{} is out of range", v));
    return static_cast<std::uint32_t>(v);
  };
  {
    stmt q(file_, db_, "SELECT instance, phase, checkpoint, replay, closed FROM parts WHERE snapshot = ? ORDER BY instance");
    q.bind(1, id);
    while (q.step("reading a snapshot's parts")) {
      part_record p;
      p.instance = u32(q.i64(0), "a part's instance");
      auto where = [&](const char* field) { return fmt::format("instance {}'s {}", p.instance, field); };
      auto ph = q.i64(1);
      if (ph < 0 || ph > static_cast<std::int64_t>(phase::finished)) throw damaged(where("phase"), fmt::format("{} is no phase", ph));
      p.phase = static_cast<phase>(ph);
      p.checkpoint = value_of(q.bytes(2), where("checkpoint"));
      p.replay = value_of(q.bytes(3), where("replay"));
      p.closed = value_of(q.bytes(4), where("closed ports"));
      s.parts.push_back(std::move(p));
    }
  }
  {
    stmt q(file_, db_, "SELECT link, side, count, eos, ended, vals FROM links WHERE snapshot = ? ORDER BY link, side");
    q.bind(1, id);
    while (q.step("reading a snapshot's links")) {
      link_record l;
      l.link = u32(q.i64(0), "a link's number");
      auto sd = q.i64(1);
      auto where = fmt::format("link {}'s {} values", l.link, sd == 0 ? "consumer" : "producer");
      if (sd != 0 && sd != 1) throw damaged(fmt::format("link {}", l.link), fmt::format("{} is no side", sd));
      l.side = static_cast<side>(sd);
      l.eos = q.i64(3) != 0;
      l.ended = q.i64(4) != 0;
      try {
        l.values = decode_list(q.bytes(5));
      } catch (const decode_error& e) {
        throw damaged(where, e.what());
      }
      if (static_cast<std::int64_t>(l.values.size()) != q.i64(2))
        throw damaged(where, fmt::format("{} values where the row says {}", l.values.size(), q.i64(2)));
      s.links.push_back(std::move(l));
    }
  }
  {
    stmt q(file_, db_,
           "SELECT instance, id, node, shown, asked_unix_ms, deadline_unix_ms FROM pending WHERE snapshot = ? ORDER BY instance, id");
    q.bind(1, id);
    while (q.step("reading a snapshot's pending decisions")) {
      pending_record d;
      d.instance = u32(q.i64(0), "a pending decision's instance");
      d.id = static_cast<std::uint64_t>(q.i64(1));
      d.node = q.text(2);
      d.shown = value_of(q.bytes(3), fmt::format("decision {} of instance {}", d.id, d.instance));
      d.asked_unix_ms = q.i64(4);
      d.deadline_unix_ms = q.i64(5);
      s.pending.push_back(std::move(d));
    }
  }
  return s;
}

void store::pin(std::int64_t id, bool pinned) {
  stmt(file_, db_, "UPDATE snapshots SET pinned = ? WHERE id = ? AND complete = 1")
      .bind(1, std::int64_t{pinned ? 1 : 0})
      .bind(2, id)
      .run("pinning a snapshot");
  if (sqlite3_changes(db_) == 0)
    throw error(error::kind::missing, fmt::format("{} holds no complete snapshot {}", file_.string(), id));
}

std::optional<std::string> store::meta(std::string_view key) const {
  stmt q(file_, db_, "SELECT value FROM meta WHERE key = ?");
  q.bind(1, key);
  if (!q.step("reading meta")) return std::nullopt;
  return q.text(0);
}

void store::set_meta(std::string_view key, std::string_view value) {
  stmt(file_, db_, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
      .bind(1, key)
      .bind_blob(2, value.data(), value.size())
      .run("writing meta");
}

std::vector<std::pair<std::string, std::string>> store::all_meta() const {
  std::vector<std::pair<std::string, std::string>> out;
  stmt q(file_, db_, "SELECT key, value FROM meta ORDER BY key");
  while (q.step("reading meta")) out.emplace_back(q.text(0), q.text(1));
  return out;
}

run_lock store::lock() {
  int fd = try_lock(dir_);
  if (fd < 0) {
    auto pid = meta("pid"), host = meta("host");
    throw error(error::kind::held,
                fmt::format("{} belongs to a live run (pid {} on {})", dir_.string(), pid.value_or("?"), host.value_or("?")));
  }
  run_lock l(fd);
  if (access_ == access::read_write) {
    set_meta("pid", std::to_string(::getpid()));
    set_meta("host", hostname());
  }
  return l;
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

// ---------------------------------------------------------------------------------------------- run_lock

run_lock& run_lock::operator=(run_lock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

run_lock::~run_lock() {
  if (fd_ >= 0) ::close(fd_);  // closing the only descriptor releases the flock
}

// ----------------------------------------------------------------------------------------- fingerprints

std::optional<std::string> first_difference(std::string_view stored, std::string_view ours, std::string_view what) {
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
    if (!more_a) return fmt::format("{} differ at line {}: this loom has `{}`, the state file has nothing there", what, line, lb);
    if (!more_b) return fmt::format("{} differ at line {}: the state file has `{}`, this loom has nothing there", what, line, la);
    return fmt::format("{} differ at line {}: the state file has `{}`, this loom has `{}`", what, line, la, lb);
  }
  return fmt::format("{} differ", what);  // only in line endings
}

void require_same(const fs::path& file, std::string_view stored, std::string_view ours, std::string_view what) {
  if (auto d = first_difference(stored, ours, what))
    throw error(error::kind::mismatch, fmt::format("{} cannot be resumed by this loom: {}", file.string(), *d));
}

}  // namespace loom::state
