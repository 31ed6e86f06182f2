// Tests of the sink kinds: sink.file, sink.stdout, sink.count.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "tests/actors/harness.hpp"

using loom::value;
using loom::value_list;
using loom::value_map;
using loom::test::running;
using loom::test::temp_dir;

namespace {

// Limits the size of the files this process writes (RLIMIT_FSIZE) for one scope: a write past it stops
// short, the next fails with EFBIG ("File too large"; SIGXFSZ is ignored meanwhile).
class file_size_limit {
 public:
  explicit file_size_limit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_) == 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit now = old_;
    now.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &now) == 0);
  }
  ~file_size_limit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  file_size_limit(const file_size_limit&) = delete;
  file_size_limit& operator=(const file_size_limit&) = delete;

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

}  // namespace

TEST_SUITE("sink.file" * doctest::timeout(10)) {
  TEST_CASE("jsonl writes one JSON value per line") {
    temp_dir dir;
    running n("sink.file", {{"path", dir.file("out.jsonl")}});
    n.start();
    n.send("text");
    n.send(value_map{{"a", value_list{1, 2.5}}});
    n.finish();
    CHECK(temp_dir::read(dir.file("out.jsonl")) == "\"text\"\n{\"a\":[1,2.5]}\n");
  }

  TEST_CASE("text writes strings as they are and the rest as JSON") {
    temp_dir dir;
    running n("sink.file", {{"path", dir.file("out.txt")}, {"format", "text"}});
    n.start();
    n.send("plain");
    n.send(42);
    n.finish();
    CHECK(temp_dir::read(dir.file("out.txt")) == "plain\n42\n");
  }

  TEST_CASE("replaces the file unless append is set") {
    temp_dir dir;
    auto path = dir.write("out.txt", "old\n");
    for (bool append : {true, false}) {
      running n("sink.file", {{"path", path}, {"format", "text"}, {"append", append}});
      n.start();
      n.send("new");
      n.finish();
      CHECK(temp_dir::read(path) == (append ? "old\nnew\n" : "new\n"));
    }
  }

  TEST_CASE("flushes whole records while running, before finish") {
    temp_dir dir;
    running n("sink.file", {{"path", dir.file("big.txt")}, {"format", "text"}});
    n.start();
    std::string record(1000, 'r');
    for (int i = 0; i < 200; ++i) n.send(record);
    auto so_far = temp_dir::read(dir.file("big.txt"));
    CHECK(so_far.size() >= 64 * 1024);
    CHECK(so_far.size() % (record.size() + 1) == 0);
    n.finish();
    CHECK(temp_dir::read(dir.file("big.txt")).size() == 200 * (record.size() + 1));
  }

  TEST_CASE("missing parent folders are made") {
    temp_dir dir;
    auto path = dir.file("no/such/dir/out.jsonl");
    running n("sink.file", {{"path", path}});
    n.start();
    n.send(1);
    n.finish();
    CHECK(temp_dir::read(path) == "1\n");
  }

  TEST_CASE("a parent that is a file fails at start naming the path") {
    temp_dir dir;
    auto file = dir.write("plain", "x");
    auto path = file + "/out.jsonl";
    running n("sink.file", {{"path", path}});
    CHECK_THROWS_WITH_AS(n.start(), doctest::Contains(("cannot create folder " + file + " for " + path).c_str()),
                         std::runtime_error);
  }

  TEST_CASE("a checkpoint counts only bytes that are in the file") {
    temp_dir dir;
    auto path = dir.file("out.txt");
    running n("sink.file", {{"path", path}, {"format", "text"}});
    n.start();
    std::string record(100, 'r');
    std::int64_t last = -1;
    int moved = 0;
    for (int i = 0; i < 3000; ++i) {
      n.send(record);
      REQUIRE(n.ctx.checkpointed.is_int());
      auto at = n.ctx.checkpointed.as_int();
      // What a restart would cut back to is never past what the file holds now.
      REQUIRE(at <= static_cast<std::int64_t>(std::filesystem::file_size(path)));
      CHECK(at % 101 == 0);
      if (at != last) ++moved, last = at;
    }
    CHECK(moved >= 3);  // it moves as records are written, not only at finish
    n.finish();
    CHECK(n.ctx.checkpointed.as_int() == 3000 * 101);
    CHECK(temp_dir::read(path).size() == 3000u * 101);
  }

  TEST_CASE("a restart cuts the file back to its checkpoint; the records since are written once") {
    temp_dir dir;
    auto path = dir.file("out.txt");
    running n("sink.file", {{"path", path}, {"format", "text"}});
    n.start();
    std::vector<std::string> sent;
    std::size_t at_checkpoint = 0;  // records the last checkpoint covers
    auto send = [&](std::string r) {
      n.send(r);
      sent.push_back(std::move(r));
    };
    for (int i = 0; i < 1500; ++i) send(fmt::format("record {}", i));
    auto checkpoint = n.ctx.checkpointed;
    REQUIRE(checkpoint.is_int());
    std::string written;
    for (const auto& r : sent) {
      if (static_cast<std::int64_t>(written.size()) == checkpoint.as_int()) break;
      written += r + "\n";
      ++at_checkpoint;
    }
    REQUIRE(static_cast<std::int64_t>(written.size()) == checkpoint.as_int());
    REQUIRE(at_checkpoint < sent.size());  // some records are only buffered
    // A failed attempt left part of a record past the checkpoint.
    { std::ofstream(path, std::ios::app) << "half a rec"; }
    n.restart(checkpoint);
    n.start();
    CHECK(temp_dir::read(path) == written);
    // The runtime hands the fresh node the records since the checkpoint again, then goes on.
    for (auto i = at_checkpoint; i < sent.size(); ++i) n.send(sent[i]);
    for (int i = 1500; i < 1600; ++i) send(fmt::format("record {}", i));
    n.finish();
    std::string all;
    for (const auto& r : sent) all += r + "\n";
    CHECK(temp_dir::read(path) == all);
  }

  TEST_CASE("a restart never extends the file: one shorter than its checkpoint fails naming the path") {
    temp_dir dir;
    auto path = dir.write("out.txt", "0\n1\n");
    running n("sink.file", {{"path", path}, {"format", "text"}});
    n.restart(value(std::int64_t{100}));
    std::string message = "cannot resume writing " + path +
                          ": it holds 4 bytes, fewer than the 100 written before this restart";
    CHECK_THROWS_WITH_AS(n.start(), doctest::Contains(message.c_str()), std::runtime_error);
    CHECK(temp_dir::read(path) == "0\n1\n");
  }

  TEST_CASE("a write cut short fails naming the path and leaves the file on its last complete record") {
    temp_dir dir;
    auto path = dir.file("out.txt");
    running n("sink.file", {{"path", path}, {"format", "text"}});
    n.start();
    {
      // Files of this process may grow to 3000 bytes: the second write of 2048 bytes stops part way.
      file_size_limit limit(3000);
      for (int i = 0; i < 1024; ++i) n.send("r");
      REQUIRE(temp_dir::read(path).size() == 2048);
      auto more = [&] {
        for (int i = 0; i < 1024; ++i) n.send("s");
      };
      CHECK_THROWS_WITH_AS(more(), ("cannot write " + path + ": File too large").c_str(), std::runtime_error);
    }
    std::string complete;
    for (int i = 0; i < 1024; ++i) complete += "r\n";
    CHECK(temp_dir::read(path) == complete);
  }

  TEST_CASE("a full device fails at finish naming the path") {
    running n("sink.file", {{"path", "/dev/full"}});
    n.start();
    n.send("lost");
    CHECK_THROWS_WITH_AS(n.finish(), "cannot write /dev/full: No space left on device", std::runtime_error);
  }

  TEST_CASE("a full device fails on the first flush while running") {
    running n("sink.file", {{"path", "/dev/full"}, {"format", "text"}});
    n.start();
    std::string record(1024, 'r');
    auto write_lots = [&] {
      for (int i = 0; i < 100; ++i) n.send(record);
    };
    CHECK_THROWS_WITH_AS(write_lots(), "cannot write /dev/full: No space left on device", std::runtime_error);
  }
}

namespace {

// Runs `body` with the process's stdout (fd 1) redirected to `path`.
template <class F>
void with_stdout_to(const std::string& path, F body) {
  std::cout.flush();
  std::fflush(stdout);
  int saved = ::dup(1);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(saved >= 0);
  REQUIRE(fd >= 0);
  ::dup2(fd, 1);
  ::close(fd);
  try {
    body();
  } catch (...) {
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    throw;
  }
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
}

}  // namespace

TEST_SUITE("sink.stdout" * doctest::timeout(10)) {
  TEST_CASE("text writes one line per value, flushed at finish") {
    temp_dir dir;
    with_stdout_to(dir.file("stdout.txt"), [] {
      running n("sink.stdout", {});
      n.start();
      n.send("hello");
      n.send(value_list{1, "a"});
      n.finish();
    });
    CHECK(temp_dir::read(dir.file("stdout.txt")) == "hello\n[1,\"a\"]\n");
  }

  TEST_CASE("jsonl quotes strings") {
    temp_dir dir;
    with_stdout_to(dir.file("stdout.jsonl"), [] {
      running n("sink.stdout", {{"format", "jsonl"}});
      n.start();
      n.send("hello");
      n.finish();
    });
    CHECK(temp_dir::read(dir.file("stdout.jsonl")) == "\"hello\"\n");
  }
}

TEST_SUITE("sink.count" * doctest::timeout(10)) {
  TEST_CASE("passes when the count matches expect") {
    running n("sink.count", {{"expect", 3}});
    for (int i = 0; i < 3; ++i) n.send(i);
    CHECK_NOTHROW(n.finish());
  }

  TEST_CASE("fails at finish when the count differs from expect") {
    running n("sink.count", {{"expect", 3}});
    n.send(1);
    CHECK_THROWS_WITH_AS(n.finish(), "expected 3 messages, got 1", std::runtime_error);
  }

  TEST_CASE("without expect any count passes") {
    running n("sink.count", {});
    n.send(1);
    CHECK_NOTHROW(n.finish());
  }
}

TEST_CASE("sink.file with a field writes that field of map values and other values whole" * doctest::timeout(10)) {
  temp_dir dir;
  running n("sink.file", {{"path", dir.file("field.txt")}, {"format", "text"}, {"field", "text"}});
  n.start();
  n.send(value(value_map{{"agent", "writer"}, {"text", "# Launch\nbody"}}));
  n.send(value("plain"));
  n.finish();
  CHECK(temp_dir::read(dir.file("field.txt")) == "# Launch\nbody\nplain\n");
}
