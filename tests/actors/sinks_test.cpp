// Tests of the sink kinds: sink.file, sink.stdout, sink.count.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "tests/actors/harness.hpp"

using loom::value;
using loom::value_list;
using loom::value_map;
using loom::test::running;
using loom::test::temp_dir;

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

  TEST_CASE("a directory that does not exist fails at start") {
    temp_dir dir;
    auto path = dir.file("no/such/dir/out.jsonl");
    running n("sink.file", {{"path", path}});
    std::string message = "cannot open " + path + " for writing: No such file or directory";
    CHECK_THROWS_WITH_AS(n.start(), message.c_str(), std::runtime_error);
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
