// tests/state/store_test.cpp: the state file (runtime/state/store.hpp): round trips, every refusal, a snapshot
// torn by a real SIGKILL, pruning that keeps the file bounded, and the liveness lock across processes.
#include <doctest/doctest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "loom/runtime/state/store.hpp"

using namespace loom;
namespace fs = std::filesystem;

namespace {

// A fresh directory for one test, removed after it.
struct scratch {
  fs::path root;
  scratch() {
    std::string tmpl = (fs::temp_directory_path() / "loom_state_test.XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    root = tmpl;
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  fs::path dir(const char* name = "run") const { return root / name; }
};

// A snapshot whose every field follows from `epoch` (so a reader can tell it is whole), with `parts`
// parts of about `payload` bytes each.
state::snapshot make_snapshot(std::uint64_t epoch, std::size_t parts = 3, std::size_t payload = 100) {
  state::snapshot s;
  s.info.epoch = epoch;
  s.info.taken_unix_ms = 1'700'000'000'000 + static_cast<std::int64_t>(epoch);
  s.info.reason = epoch % 2 ? "tick" : "pause";
  s.info.progress = R"({"a":{"in":)" + std::to_string(epoch) + "}}";
  for (std::uint32_t i = 0; i < parts; ++i) {
    std::string body(payload, static_cast<char>('a' + (epoch + i) % 26));
    s.parts.push_back({i, static_cast<state::phase>((epoch + i) % 4),
                       value_map{{"epoch", static_cast<std::int64_t>(epoch)}, {"body", body}},
                       value_list{value_list{false, std::int64_t{0}, static_cast<std::int64_t>(epoch)}},
                       value_list{static_cast<std::int64_t>(i)}});
  }
  s.links.push_back({7, state::side::consumer, false, epoch % 2 == 1, {1, 2, static_cast<std::int64_t>(epoch)}});
  s.links.push_back({7, state::side::producer, true, false, {}});
  s.links.push_back({9, state::side::producer, false, false, {"x\0y", bytes{std::byte{0}}}});
  s.pending.push_back({1, epoch, "review", value_map{{"draft", "text"}}, 1'700'000'000'000, 0});
  return s;
}

void check_is(const state::snapshot& got, const state::snapshot& want) {
  CHECK(got.info.epoch == want.info.epoch);
  CHECK(got.info.taken_unix_ms == want.info.taken_unix_ms);
  CHECK(got.info.reason == want.info.reason);
  CHECK(got.info.progress == want.info.progress);
  REQUIRE(got.parts.size() == want.parts.size());
  for (std::size_t i = 0; i < got.parts.size(); ++i) {
    CHECK(got.parts[i].instance == want.parts[i].instance);
    CHECK(got.parts[i].phase == want.parts[i].phase);
    CHECK(got.parts[i].checkpoint == want.parts[i].checkpoint);
    CHECK(got.parts[i].replay == want.parts[i].replay);
    CHECK(got.parts[i].closed == want.parts[i].closed);
  }
  REQUIRE(got.links.size() == want.links.size());
  for (std::size_t i = 0; i < got.links.size(); ++i) {
    CHECK(got.links[i].link == want.links[i].link);
    CHECK(got.links[i].side == want.links[i].side);
    CHECK(got.links[i].eos == want.links[i].eos);
    CHECK(got.links[i].ended == want.links[i].ended);
    CHECK(got.links[i].values == want.links[i].values);
  }
  REQUIRE(got.pending.size() == want.pending.size());
  for (std::size_t i = 0; i < got.pending.size(); ++i) {
    CHECK(got.pending[i].instance == want.pending[i].instance);
    CHECK(got.pending[i].id == want.pending[i].id);
    CHECK(got.pending[i].node == want.pending[i].node);
    CHECK(got.pending[i].shown == want.pending[i].shown);
    CHECK(got.pending[i].asked_unix_ms == want.pending[i].asked_unix_ms);
    CHECK(got.pending[i].deadline_unix_ms == want.pending[i].deadline_unix_ms);
  }
}

// A statement on the raw file, as another program would run it.
void raw_sql(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, msg);
}

std::int64_t raw_int(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  auto v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

std::string raw_text(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  std::string v = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

// What opening DIR says, as (kind, message); kind io and "(opened)" when it opens.
std::pair<state::error::kind, std::string> open_error(const fs::path& dir) {
  try {
    auto s = state::store::open(dir);
    s.read_latest();
  } catch (const state::error& e) {
    return {e.why, e.what()};
  }
  return {state::error::kind::io, "(opened)"};
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Runs `body` in a forked child; returns its wait status. The child never returns into doctest.
template <class F>
int in_child(F body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = 1;
    try {
      rc = body();
    } catch (...) {
      rc = 2;
    }
    ::_exit(rc);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

bool killed_by_sigkill(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

}  // namespace

TEST_CASE("store: a new state file is stamped and in WAL mode, and a snapshot comes back whole") {
  scratch tmp;
  auto want = make_snapshot(5);
  std::int64_t id = 0;
  {
    auto s = state::store::create(tmp.dir());
    CHECK_FALSE(s.latest_id());
    s.set_meta("graph_yaml", "nodes: {}\n");
    s.set_meta("sets", std::string("a\0b", 3));
    s.set_meta("graph_yaml", "nodes: {a: 1}\n");
    id = s.write(want);
    CHECK(id > 0);
  }
  auto file = tmp.dir() / "state.sqlite";
  CHECK(static_cast<std::uint32_t>(raw_int(file, "PRAGMA application_id")) == 0x4C4F4F4Du);
  CHECK(raw_int(file, "PRAGMA user_version") == 1);
  CHECK(raw_text(file, "PRAGMA journal_mode") == "wal");
  CHECK(raw_int(file, "PRAGMA auto_vacuum") == 2);  // incremental

  auto s = state::store::open(tmp.dir(), state::store::access::read_only);
  CHECK(s.meta("graph_yaml") == "nodes: {a: 1}\n");
  CHECK(s.meta("nothing") == std::nullopt);
  CHECK(s.meta("sets") == std::string("a\0b", 3));  // values are blobs: NULs kept
  CHECK(s.all_meta().size() == 2);
  CHECK(s.latest_id() == id);
  auto got = s.read_latest();
  CHECK(got.info.id == id);
  check_is(got, want);
  CHECK_THROWS_WITH_AS(s.read(id + 100), doctest::Contains("holds no complete snapshot"), state::error);
}

TEST_CASE("store: a read-only store reads while a writer writes, and writes nothing itself") {
  scratch tmp;
  auto w = state::store::create(tmp.dir());
  w.write(make_snapshot(1));
  auto r = state::store::open(tmp.dir(), state::store::access::read_only);
  w.write(make_snapshot(2));
  check_is(r.read_latest(), make_snapshot(2));
  CHECK_THROWS_AS(r.write(make_snapshot(3)), state::error);
  CHECK_THROWS_AS(r.set_meta("status", "finished"), state::error);
  CHECK(r.list().size() == 2);
  CHECK(r.meta("status") == std::nullopt);
}

TEST_CASE("store: create refuses a DIR that holds a run; open refuses a DIR that holds none") {
  scratch tmp;
  { auto s = state::store::create(tmp.dir()); }
  try {
    state::store::create(tmp.dir());
    FAIL("created over a run");
  } catch (const state::error& e) {
    CHECK(e.why == state::error::kind::exists);
    CHECK(std::string(e.what()) == (tmp.dir() / "state.sqlite").string() + " already holds a run's state");
  }
  auto [kind, msg] = open_error(tmp.dir("empty"));
  CHECK(kind == state::error::kind::missing);
  CHECK(msg == tmp.dir("empty").string() + " holds no loom state (no state.sqlite)");
  // A DIR with no snapshot yet opens, but has nothing to resume from.
  auto [k2, m2] = open_error(tmp.dir());
  CHECK(k2 == state::error::kind::damaged);
  CHECK(m2 == (tmp.dir() / "state.sqlite").string() + " is damaged: it holds no complete snapshot");
}

TEST_CASE("store: a text file, an empty file, a plain SQLite file and another program's are not loom's") {
  scratch tmp;
  auto file = tmp.dir() / "state.sqlite";
  fs::create_directories(tmp.dir());
  auto expect_foreign = [&](const std::string& why) {
    auto [kind, msg] = open_error(tmp.dir());
    CHECK(kind == state::error::kind::foreign);
    CHECK(msg == file.string() + " is not a loom state file (" + why + ")");
  };
  spit(file, "name,value\nloom,1\n");
  expect_foreign("it is not a SQLite database");
  spit(file, "");
  expect_foreign("it is empty");
  fs::remove(file);
  raw_sql(file, "CREATE TABLE t(x); INSERT INTO t VALUES(1);");
  expect_foreign("a SQLite database without an application id");
  raw_sql(file, "PRAGMA application_id=1234;");
  expect_foreign("a SQLite database of another program: application_id 0x000004d2");
  CHECK(raw_int(file, "SELECT x FROM t") == 1);  // looked at, not changed
  CHECK_THROWS_WITH_AS(state::store::drop(tmp.dir()), doctest::Contains("is not a loom state file"), state::error);
  CHECK(fs::exists(file));
}

TEST_CASE("store: a state file of a newer loom is refused with both versions") {
  scratch tmp;
  {
    auto s = state::store::create(tmp.dir());
    s.write(make_snapshot(1));
  }
  auto file = tmp.dir() / "state.sqlite";
  raw_sql(file, "PRAGMA user_version=99;");
  auto [kind, msg] = open_error(tmp.dir());
  CHECK(kind == state::error::kind::newer);
  CHECK(msg == file.string() + " was written by a newer loom (state version 99; this loom reads up to 1)");
}

TEST_CASE("store: a truncated file, a flipped byte in a blob and a missing table are damaged") {
  scratch tmp;
  auto file = tmp.dir() / "state.sqlite";
  auto marker = std::string(64, 'Q') + "-the-checkpoint-";
  {
    auto s = state::store::create(tmp.dir());
    for (std::uint64_t e = 1; e <= 3; ++e) s.write(make_snapshot(e, 40, 2000));
    auto snap = make_snapshot(4, 40, 2000);
    snap.parts[17].checkpoint = value_map{{"mark", marker}};
    s.write(snap);
  }
  REQUIRE_FALSE(fs::exists(fs::path(file.string() + "-wal")));  // the last close checkpointed into the file
  auto good = slurp(file);

  SUBCASE("a flipped byte in a blob fails its checksum, naming the snapshot and the instance") {
    auto at = good.find(marker);
    REQUIRE(at != std::string::npos);
    REQUIRE(good.find(marker, at + 1) == std::string::npos);  // one copy: pruned snapshots are gone
    auto bad = good;
    bad[at + 10] ^= 0x01;
    spit(file, bad);
    auto [kind, msg] = open_error(tmp.dir());
    CHECK(kind == state::error::kind::damaged);
    CHECK(msg.find(file.string() + " is damaged: snapshot 4, instance 17's checkpoint: checksum mismatch") == 0);
  }
  SUBCASE("a file cut in half or by one page") {
    for (auto size : {good.size() / 2, good.size() - 4096}) {
      CAPTURE(size);
      spit(file, good.substr(0, size));
      auto [kind, msg] = open_error(tmp.dir());
      CHECK(kind == state::error::kind::damaged);
      CHECK(msg == file.string() + " is damaged: database disk image is malformed (while reading its stamp)");
    }
  }
  SUBCASE("a page of the file overwritten") {
    for (std::size_t page : {1u, 2u, 5u}) {  // SQLite's pages 2, 3 and 6 (4096 bytes each)
      CAPTURE(page);
      auto bad = good;
      REQUIRE(bad.size() > (page + 1) * 4096);
      for (std::size_t i = 0; i < 4096; ++i) bad[page * 4096 + i] = static_cast<char>(0x5A);
      spit(file, bad);
      auto [kind, msg] = open_error(tmp.dir());
      CHECK(kind == state::error::kind::damaged);
      CHECK(msg.find(file.string() + " is damaged: ") == 0);
      CHECK(msg.find('\n') == std::string::npos);
    }
  }
  SUBCASE("a file cut inside SQLite's header") {
    spit(file, good.substr(0, 40));
    auto [kind, msg] = open_error(tmp.dir());
    CHECK(kind == state::error::kind::damaged);
    CHECK(msg == file.string() + " is damaged: it is 40 bytes long, shorter than a SQLite header");
  }
  SUBCASE("a table dropped by hand") {
    raw_sql(file, "DROP TABLE decisions;");
    auto [kind, msg] = open_error(tmp.dir());
    CHECK(kind == state::error::kind::damaged);
    CHECK(msg == file.string() + " is damaged: it has no table `decisions`");
  }
  SUBCASE("a phase no loom writes") {
    raw_sql(file, "UPDATE parts SET phase = 9 WHERE instance = 3;");
    auto [kind, msg] = open_error(tmp.dir());
    CHECK(kind == state::error::kind::damaged);
    CHECK(msg == file.string() + " is damaged: snapshot 4, instance 3's phase: 9 is no phase");
  }
  SUBCASE("a link's count that does not match its values") {
    raw_sql(file, "UPDATE links SET count = 5 WHERE link = 7 AND side = 0;");
    auto [kind, msg] = open_error(tmp.dir());
    CHECK(kind == state::error::kind::damaged);
    CHECK(msg == file.string() + " is damaged: snapshot 4, link 7's consumer values: 3 values where the row says 5");
  }
}

TEST_CASE("store: a snapshot that cannot be encoded writes nothing and names the instance") {
  scratch tmp;
  auto s = state::store::create(tmp.dir());
  auto first = s.write(make_snapshot(1));
  auto bad = make_snapshot(2);
  value deep = 1;
  for (int i = 0; i < 60; ++i) deep = value_list{deep};
  bad.parts[2].replay = deep;
  CHECK_THROWS_WITH_AS(s.write(bad), "instance 2's replay: a value nested deeper than 48 lists and maps",
                       state::encode_error);
  CHECK(s.latest_id() == first);
  CHECK(s.list().size() == 1);
  CHECK(s.write(make_snapshot(3)) > first);  // the store is usable after the rollback
}

TEST_CASE("store: a process SIGKILLed in the middle of writing a snapshot leaves the previous one intact") {
  // Each part is ~200 KB, so the transaction spills pages into the WAL before it would commit: the kill
  // leaves uncommitted frames on disk, which the next open must ignore.
  constexpr std::size_t parts = 40, payload = 200'000;
  for (long k : {1L, 2L, 20L, 41L, 43L}) {
    CAPTURE(k);
    scratch tmp;
    auto before = make_snapshot(1, parts, payload);
    std::int64_t good_id = 0;
    {
      auto s = state::store::create(tmp.dir());
      good_id = s.write(before);
    }
    auto wal = fs::path((tmp.dir() / "state.sqlite").string() + "-wal");
    std::error_code ec;
    auto wal_before = fs::exists(wal) ? fs::file_size(wal) : 0;
    int status = in_child([&] {
      ::setenv(state::crash_env, std::to_string(k).c_str(), 1);
      auto s = state::store::open(tmp.dir());
      s.write(make_snapshot(2, parts, payload));
      return 0;  // reached only if the hook did not fire
    });
    REQUIRE(killed_by_sigkill(status));
    if (k > 5) CHECK(fs::file_size(wal, ec) > wal_before + 1'000'000);  // torn frames are on disk

    auto s = state::store::open(tmp.dir());
    CHECK(s.latest_id() == good_id);
    CHECK(s.list().size() == 1);
    check_is(s.read_latest(), before);
    auto next = s.write(make_snapshot(3, 2, 10));
    CHECK(next > good_id);
    check_is(s.read_latest(), make_snapshot(3, 2, 10));
  }
}

TEST_CASE("store: a writer killed at any moment leaves a latest snapshot that is whole") {
  for (int round = 0; round < 4; ++round) {
    scratch tmp;
    { auto s = state::store::create(tmp.dir()); }
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        auto s = state::store::open(tmp.dir());
        for (std::uint64_t e = 1;; ++e) s.write(make_snapshot(e, 20, 5000 + 997 * (e % 13)));
      } catch (...) {
      }
      ::_exit(3);
    }
    // Kill it once it has written a few snapshots (a different moment each round, by the count seen).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::int64_t seen = 0;
    while (seen < 5 + 7 * round && std::chrono::steady_clock::now() < deadline) {
      try {
        auto r = state::store::open(tmp.dir(), state::store::access::read_only);
        seen = r.latest_id().value_or(0);
      } catch (const state::error&) {  // busy while the writer checkpoints
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(killed_by_sigkill(status));
    REQUIRE(seen >= 5 + 7 * round);

    auto s = state::store::open(tmp.dir());
    auto got = s.read_latest();
    CAPTURE(got.info.epoch);
    CHECK(got.info.epoch >= static_cast<std::uint64_t>(seen));
    check_is(got, make_snapshot(got.info.epoch, 20, 5000 + 997 * (got.info.epoch % 13)));
    CHECK(s.list().size() <= 2);
  }
}

TEST_CASE("store: pruning keeps the last K snapshots and the file bounded; pinned ones stay") {
  scratch tmp;
  auto s = state::store::create(tmp.dir());
  constexpr std::size_t parts = 16, payload = 4000;  // ~64 KB of values a snapshot
  std::int64_t pinned = 0;
  std::uintmax_t size_at_50 = 0;
  for (std::uint64_t e = 1; e <= 500; ++e) {
    auto id = s.write(make_snapshot(e, parts, payload));
    if (e == 10) {
      pinned = id;
      s.pin(id, true);
    }
    if (e == 50) size_at_50 = s.bytes_on_disk();
  }
  auto list = s.list();
  REQUIRE(list.size() == 3);
  CHECK(list[0].id == pinned);
  CHECK(list[0].pinned);
  CHECK(list[1].epoch == 499);
  CHECK(list[2].epoch == 500);
  check_is(s.read(pinned), make_snapshot(10, parts, payload));
  // The rows of pruned snapshots went with them (ON DELETE CASCADE needs foreign_keys on).
  auto file = tmp.dir() / "state.sqlite";
  CHECK(raw_int(file, "SELECT count(*) FROM parts") == 3 * static_cast<std::int64_t>(parts));
  CHECK(raw_int(file, "SELECT count(*) FROM links") == 9);
  // 500 snapshots of ~64 KB are 32 MB of history: the file and its WAL hold a few snapshots' worth, the
  // same after 500 as after 50.
  auto size = s.bytes_on_disk();
  MESSAGE("bytes on disk after 50 snapshots: " << size_at_50 << ", after 500: " << size);
  CHECK(size <= size_at_50 + 256 * 1024);
  CHECK(size < 6u * 1024 * 1024);

  s.write(make_snapshot(501, parts, payload), 1);
  CHECK(s.list().size() == 2);  // the pinned one and the newest
  s.pin(pinned, false);
  s.write(make_snapshot(502, parts, payload), 1);
  CHECK(s.list().size() == 1);
  CHECK_THROWS_WITH_AS(s.pin(pinned, true), doctest::Contains("holds no complete snapshot"), state::error);
}

TEST_CASE("store: the lock refuses a second holder in another process, names the first, and dies with it") {
  scratch tmp;
  auto s = state::store::create(tmp.dir());
  CHECK_FALSE(state::store::held(tmp.dir()));
  {
    auto lock = s.lock();
    CHECK(lock.owns());
    CHECK(s.meta("pid") == std::to_string(::getpid()));
    CHECK(state::store::held(tmp.dir()));
    auto me = std::to_string(::getpid());
    int status = in_child([&] {
      auto other = state::store::open(tmp.dir());
      try {
        auto l = other.lock();
        return 10;  // took a held lock
      } catch (const state::error& e) {
        std::string msg = e.what();
        bool named = e.why == state::error::kind::held &&
                     msg.find(tmp.dir().string() + " belongs to a live run (pid " + me + " on ") == 0;
        return named ? 0 : 11;
      }
    });
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_THROWS_AS(state::store::drop(tmp.dir()), state::error);
  }
  CHECK_FALSE(state::store::held(tmp.dir()));

  // A holder killed with SIGKILL holds nothing: the kernel drops its flock.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    auto child = state::store::open(tmp.dir());
    auto l = child.lock();
    char c = 'x';
    if (::write(ready[1], &c, 1) != 1) ::_exit(4);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  CHECK(state::store::held(tmp.dir()));
  auto holder = "(pid " + std::to_string(pid) + " on ";
  CHECK_THROWS_WITH_AS(s.lock(), doctest::Contains(holder.c_str()), state::error);
  ::kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK_FALSE(state::store::held(tmp.dir()));
  auto again = s.lock();
  CHECK(again.owns());
}

TEST_CASE("store: drop removes a finished run's state and its DIR") {
  scratch tmp;
  {
    auto s = state::store::create(tmp.dir());
    s.write(make_snapshot(1));
  }
  state::store::drop(tmp.dir());
  CHECK_FALSE(fs::exists(tmp.dir()));
  CHECK_THROWS_WITH_AS(state::store::drop(tmp.dir()), doctest::Contains("holds no loom state"), state::error);
}

TEST_CASE("store: first_difference names the first line that differs") {
  CHECK(state::first_difference("a\nb\nc\n", "a\nb\nc\n", "the graphs") == std::nullopt);
  CHECK(state::first_difference("a\nb cap 64\nc\n", "a\nb cap 32\nc\n", "the graphs") ==
        "the graphs differ at line 2: the state file has `b cap 64`, this loom has `b cap 32`");
  CHECK(state::first_difference("a\n", "a\nb\n", "the kinds") ==
        "the kinds differ at line 2: this loom has `b`, the state file has nothing there");
  CHECK(state::first_difference("a\nb", "a\n", "the kinds") ==
        "the kinds differ at line 2: the state file has `b`, this loom has nothing there");
  // `loom runs --fork` names its side.
  CHECK(state::first_difference("a\nb", "a\nc", "the expanded graphs", "the fork") ==
        "the expanded graphs differ at line 2: the state file has `b`, the fork has `c`");
  CHECK(state::first_difference("a\n", "a\nc\n", "the expanded graphs", "the fork") ==
        "the expanded graphs differ at line 2: the fork has `c`, the state file has nothing there");
  try {
    state::require_same("/x/state.sqlite", "v1", "v2", "the builds");
    FAIL("no refusal");
  } catch (const state::error& e) {
    CHECK(e.why == state::error::kind::mismatch);
    CHECK(std::string(e.what()) ==
          "/x/state.sqlite cannot be resumed by this loom: the builds differ at line 1: the state file has `v1`, this loom has `v2`");
  }
}

// -- threads (`loom serve --state`, docs/durability.md "Threads") ---------------------------------------

TEST_CASE("store: a thread's row is replaced as a whole, read back, and deleted once idle") {
  scratch tmp;
  auto s = state::store::create(tmp.dir());
  CHECK_FALSE(s.read_thread("alice").has_value());
  s.write_thread("alice", value_map{{"agent#0", value_list{std::string("one")}}}, 1000);
  s.write_thread("bob", value_map{{"agent#0", value_list{}}}, 2000);
  s.write_thread("alice", value_map{{"agent#0", value_list{std::string("one"), std::string("two")}}}, 3000);
  auto a = s.read_thread("alice");
  REQUIRE(a.has_value());
  CHECK(a->id == "alice");
  CHECK(a->updated_unix_ms == 3000);
  CHECK(a->state == value(value_map{{"agent#0", value_list{std::string("one"), std::string("two")}}}));
  CHECK(s.thread_count() == 2);
  CHECK(s.expire_threads(2500) == 1);  // bob, last updated at 2000
  CHECK_FALSE(s.read_thread("bob").has_value());
  CHECK(s.read_thread("alice").has_value());
  CHECK(s.thread_count() == 1);
}

TEST_CASE("store: a state file from before threads is read; a read-write open adds the table") {
  scratch tmp;
  auto file = tmp.dir() / "state.sqlite";
  { auto s = state::store::create(tmp.dir()); }
  {  // as a loom before threads made it: no `threads` table
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "DROP TABLE threads", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto r = state::store::open(tmp.dir(), state::store::access::read_only);
    CHECK(r.thread_count() == 0);
    CHECK_FALSE(r.read_thread("alice").has_value());
  }
  auto w = state::store::open(tmp.dir());
  w.write_thread("alice", value_map{{"agent#0", std::int64_t{1}}}, 1);
  CHECK(w.thread_count() == 1);
}

TEST_CASE("store: a thread whose blob is damaged is refused naming the thread") {
  scratch tmp;
  auto file = tmp.dir() / "state.sqlite";
  { state::store::create(tmp.dir()).write_thread("alice", value_map{{"agent#0", std::string(64, 'M')}}, 1); }
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT state FROM threads", -1, &q, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(q) == SQLITE_ROW);
    const auto* p = static_cast<const char*>(sqlite3_column_blob(q, 0));
    std::string b(p, static_cast<std::size_t>(sqlite3_column_bytes(q, 0)));
    sqlite3_finalize(q);
    b[b.size() - 10] ^= 0x01;  // inside the 64 M's: the checksum no longer matches
    REQUIRE(sqlite3_prepare_v2(db, "UPDATE threads SET state = ?", -1, &q, nullptr) == SQLITE_OK);
    sqlite3_bind_blob(q, 1, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(q) == SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);
  }
  auto s = state::store::open(tmp.dir());
  try {
    (void)s.read_thread("alice");
    FAIL("a damaged thread was read");
  } catch (const state::error& e) {
    CHECK(e.why == state::error::kind::damaged);
    CHECK(std::string(e.what()).find("is damaged: thread `alice`: ") != std::string::npos);
  }
}
