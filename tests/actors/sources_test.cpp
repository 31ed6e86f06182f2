// Tests of the source kinds: source.sequence, source.value, source.blob, source.file.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "loom/runtime/json.hpp"
#include "tests/actors/harness.hpp"

using loom::value;
using loom::test::ints;
using loom::test::running;

TEST_SUITE("source.sequence" * doctest::timeout(10)) {
  TEST_CASE("emits count integers from start by step") {
    running n("source.sequence", {{"count", 4}, {"start", 10}, {"step", -3}});
    CHECK(n.drain() == std::vector<value>{10, 7, 4, 1});
  }

  TEST_CASE("defaults emit 0 to 9") {
    running n("source.sequence", {});
    CHECK(n.drain() == ints(0, 10));
  }

  TEST_CASE("emits no more than the budget per pull and reports more while values remain") {
    running n("source.sequence", {{"count", 5}});
    n.ctx.budget_per_pull = 2;
    n.start();
    CHECK(n.pull());
    CHECK(n.out().size() == 2);
    CHECK(n.pull());
    CHECK(n.out().size() == 4);
    CHECK_FALSE(n.pull());
    CHECK(n.out() == ints(0, 5));
  }

  TEST_CASE("a zero budget emits nothing and keeps the source alive") {
    running n("source.sequence", {{"count", 3}});
    n.ctx.budget_per_pull = 0;
    CHECK(n.pull());
    CHECK(n.out().empty());
  }

  TEST_CASE("count zero emits nothing") {
    running n("source.sequence", {{"count", 0}});
    CHECK(n.drain().empty());
  }

  TEST_CASE("stops early once the run is stopping") {
    running n("source.sequence", {{"count", 1000}});
    n.ctx.budget_per_pull = 10;
    CHECK(n.pull());
    n.ctx.stop = true;
    CHECK_FALSE(n.pull());
    CHECK(n.out().size() == 10);
  }
}

TEST_SUITE("source.value" * doctest::timeout(10)) {
  TEST_CASE("emits the value repeat times") {
    running n("source.value", {{"value", loom::graph::config_map{{"a", 1}}}, {"repeat", 3}});
    auto& out = n.drain();
    REQUIRE(out.size() == 3);
    for (auto& v : out) CHECK(loom::to_json_line(v) == R"({"a":1})");
  }

  TEST_CASE("every emit shares one payload") {
    running n("source.value", {{"value", "a long enough string to live on the heap"}, {"repeat", 3}});
    auto& out = n.drain();
    REQUIRE(out.size() == 3);
    CHECK(out[0].shares_payload_with(out[1]));
    CHECK(out[1].shares_payload_with(out[2]));
  }

  TEST_CASE("repeat defaults to one and zero emits nothing") {
    CHECK(running("source.value", {{"value", 7}}).drain() == std::vector<value>{7});
    CHECK(running("source.value", {{"value", 7}, {"repeat", 0}}).drain().empty());
  }

  TEST_CASE("keeps to the budget") {
    running n("source.value", {{"value", 1}, {"repeat", 5}});
    n.ctx.budget_per_pull = 3;
    CHECK(n.pull());
    CHECK_FALSE(n.pull());
    CHECK(n.out().size() == 5);
  }
}

TEST_SUITE("source.blob" * doctest::timeout(10)) {
  TEST_CASE("emits count blobs of size bytes with a deterministic pattern") {
    running n("source.blob", {{"count", 3}, {"size", 300}});
    auto& out = n.drain();
    REQUIRE(out.size() == 3);
    for (std::size_t k = 0; k < out.size(); ++k) {
      const auto& b = out[k].as_bytes();
      REQUIRE(b.size() == 300);
      CHECK(b[0] == static_cast<std::byte>(k));
      CHECK(b[299] == static_cast<std::byte>((299 + k) & 0xff));
    }
    CHECK(out[0] == running("source.blob", {{"count", 1}, {"size", 300}}).drain()[0]);
  }

  TEST_CASE("each blob is a fresh allocation") {
    running n("source.blob", {{"count", 2}, {"size", 16}});
    auto& out = n.drain();
    REQUIRE(out.size() == 2);
    CHECK_FALSE(out[0].shares_payload_with(out[1]));
  }

  TEST_CASE("defaults emit 1000 blobs of 1 KiB, within the budget") {
    running n("source.blob", {});
    n.ctx.budget_per_pull = 64;
    auto& out = n.drain();
    CHECK(out.size() == 1000);
    CHECK(out.back().payload_size() == 1024);
  }
}

TEST_SUITE("source.file" * doctest::timeout(10)) {
  TEST_CASE("lines: emits each line as a string, without \\n or \\r\\n, the last one unterminated") {
    loom::test::temp_dir dir;
    auto path = dir.write("in.txt", "one\r\ntwo\n\nthree");
    running n("source.file", {{"path", path}});
    CHECK(n.drain() == std::vector<value>{"one", "two", "", "three"});
  }

  TEST_CASE("lines: a line longer than the read chunk stays whole") {
    loom::test::temp_dir dir;
    std::string long_line(10000, 'x');
    auto path = dir.write("long.txt", long_line + "\nshort\n");
    running n("source.file", {{"path", path}});
    CHECK(n.drain() == std::vector<value>{long_line, "short"});
  }

  TEST_CASE("jsonl: parses each non-blank line into a value") {
    loom::test::temp_dir dir;
    auto path = dir.write("in.jsonl", "{\"a\": [1, 2]}\n\n  \n\"s\"\r\n3.5\n");
    running n("source.file", {{"path", path}, {"format", "jsonl"}});
    auto& out = n.drain();
    REQUIRE(out.size() == 3);
    CHECK(loom::to_json_line(out[0]) == R"({"a":[1,2]})");
    CHECK(out[1] == value("s"));
    CHECK(out[2] == value(3.5));
  }

  TEST_CASE("jsonl: a bad line throws naming the file and line") {
    loom::test::temp_dir dir;
    auto path = dir.write("bad.jsonl", "1\n\n{\"a\": }\n");
    running n("source.file", {{"path", path}, {"format", "jsonl"}});
    n.start();
    std::string where = path + ":3: invalid JSON";
    CHECK_THROWS_WITH_AS(n.pull(), doctest::Contains(where.c_str()), std::runtime_error);
  }

  TEST_CASE("jsonl: a line nested 50,000 deep fails naming the file, line and column (no crash)") {
    loom::test::temp_dir dir;
    auto path = dir.write("deep.jsonl", "1\n" + std::string(50'000, '[') + std::string(50'000, ']') + "\n");
    running n("source.file", {{"path", path}, {"format", "jsonl"}});
    n.start();
    std::string message = path + ":2: arrays and objects are nested deeper than 64 levels (column 65)";
    CHECK_THROWS_WITH_AS(n.pull(), message.c_str(), std::runtime_error);
  }

  TEST_CASE("jsonl: an integer above INT64_MAX is read as a double, never wrapped to -1") {
    loom::test::temp_dir dir;
    auto path = dir.write("big.jsonl", "18446744073709551615\n");
    running n("source.file", {{"path", path}, {"format", "jsonl"}});
    n.start();
    n.pull();
    auto out = n.out();
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].is_float());
    CHECK(out[0].as_float() == 18446744073709551615.0);
  }

  TEST_CASE("a line longer than 16 MiB fails naming the file and line, without buffering the rest") {
    loom::test::temp_dir dir;
    auto path = dir.write("long.txt", "short\n" + std::string((16u << 20) + 10, 'x') + "\n");
    running n("source.file", {{"path", path}});
    n.start();
    std::string message = path + ":2: the line is longer than 16777216 bytes";
    CHECK_THROWS_WITH_AS(while (n.pull()) {}, message.c_str(), std::runtime_error);
  }

  TEST_CASE("a missing file fails at start naming the path and the reason") {
    loom::test::temp_dir dir;
    running n("source.file", {{"path", dir.file("missing.txt")}});
    std::string message = "cannot open " + dir.file("missing.txt") + ": No such file or directory";
    CHECK_THROWS_WITH_AS(n.start(), message.c_str(), std::runtime_error);
  }

  TEST_CASE("reads incrementally: at most the budget of lines per pull") {
    loom::test::temp_dir dir;
    std::string text;
    for (int i = 0; i < 10; ++i) text += std::to_string(i) + "\n";
    running n("source.file", {{"path", dir.write("ten.txt", text)}, {"format", "jsonl"}});
    n.ctx.budget_per_pull = 4;
    n.start();
    CHECK(n.pull());
    CHECK(n.out() == ints(0, 4));
    CHECK(n.pull());
    CHECK_FALSE(n.pull());
    CHECK(n.out() == ints(0, 10));
  }

  TEST_CASE("a directory fails with a read error") {
    loom::test::temp_dir dir;
    running n("source.file", {{"path", dir.file("")}});
    n.start();
    CHECK_THROWS_WITH_AS(n.pull(), doctest::Contains("cannot read"), std::runtime_error);
  }
}
