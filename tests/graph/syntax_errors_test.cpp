// YAML syntax errors point at the mistake; empty, binary, missing and hostile input is an error, never a
// crash, a hang or an exception.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "test_support.hpp"

using namespace loom::graph;
using loom::graph::testing::check_text;

TEST_CASE("an unclosed quote is reported where it opens") {
  // yaml-cpp reads this quote to the end of the file without complaint
  CHECK(check_text("nodes:\n  a:\n    kind: \"sink.count\n  b: {kind: sink.count}\n")
            .find("t.yaml:3:11: error: unclosed quote: this `\"` is never closed") != std::string::npos);
  // here the parser fails lines later; the quote that ran over is the mistake
  std::string out = check_text("nodes:\n  a:\n    kind: 'sink.count\n  b: {kind: sink.count}\n  c: 'x'\n");
  CHECK(out.find("t.yaml:3:11: error: unclosed quote") != std::string::npos);
}

TEST_CASE("tabs in indentation are errors at the tab with a hint") {
  std::string out = check_text("nodes:\n  a:\n\t  kind: sink.count\n");
  CHECK(out.find("t.yaml:3:1: error: a tab character in the indentation\n  hint: YAML forbids tabs for indentation; "
                 "use spaces") != std::string::npos);
  CHECK(check_text("nodes:\n  a: {kind: sink.count}   \t# tab after content is fine\n").find("tab") ==
        std::string::npos);
}

TEST_CASE("bad indentation is reported on its line") {
  CHECK(check_text("nodes:\n  a:\n    kind: sink.count\n   replicas: 2\n").find("t.yaml:4:") != std::string::npos);
  CHECK(check_text("nodes:\n  a:\n    kind: sink.count\n      replicas: 2\n").find("t.yaml:4:") != std::string::npos);
}

TEST_CASE("an unclosed bracket is reported where it opens") {
  CHECK(check_text("nodes:\n  a: {kind: sink.count, params: [1, 2}\n").find("t.yaml:2:") != std::string::npos);
  CHECK(check_text("nodes: {}\nedges: [a -> b\n").find("t.yaml:2:8: error: this bracket is never closed") !=
        std::string::npos);
}

TEST_CASE("empty, binary and missing files are errors") {
  CHECK(check_text("") == "t.yaml: error: the file is empty\n  hint: a graph file needs at least a `nodes:` map\n");
  CHECK(check_text("  \n\n").find("t.yaml: error: the file is empty") == 0);
  CHECK(check_text(std::string("nodes:\n  a\0b: 1\n", 14)).find("t.yaml:2:4: error: the file is binary") == 0);
  CHECK(check_text("nodes: \xff\xfe\n").find("t.yaml:1:8: error: the file is not UTF-8 text") == 0);
  CHECK(check_text("nodes: {a: {kind: sink.count, params: {t: caf\xc3\xa9}}}\n").find("UTF-8") == std::string::npos);
  diagnostics diags;
  CHECK_FALSE(load_graph_file("/nonexistent/dir/g.yaml", diags));
  CHECK(diags.str() == "/nonexistent/dir/g.yaml: error: cannot read: No such file or directory\n");
}

TEST_CASE("deep nesting is an error, not a stack overflow") {
  std::string flow(100000, '[');
  CHECK(check_text("nodes: " + flow + "\n").find("nested deeper than 64 levels") != std::string::npos);
  std::string dashes;
  for (int i = 0; i < 5000; ++i) dashes += "- ";
  CHECK(check_text("nodes:\n  a:\n    params:\n      x: " + dashes + "1\n").find("nested deeper") != std::string::npos);
  std::string block = "nodes:\n";
  for (int i = 1; i < 100; ++i) block += std::string(static_cast<std::size_t>(i) * 2, ' ') + "k:\n";
  CHECK(check_text(block).find("nested deeper") != std::string::npos);
}

TEST_CASE("aliases that refer to themselves or expand hugely are errors") {
  CHECK(check_text("nodes:\n  a:\n    kind: source.value\n    params: &x {value: *x}\n").find("nested deeper") !=
        std::string::npos);
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    laughs += fmt::format("a{0}: &a{0} [", i);
    for (int j = 0; j < 10; ++j) laughs += fmt::format("{}*a{}", j ? ", " : "", i - 1);
    laughs += "]\n";
  }
  std::string indented;
  for (std::size_t start = 0; start < laughs.size();) {
    auto end = laughs.find('\n', start);
    indented += "      " + laughs.substr(start, end - start + 1);
    start = end + 1;
  }
  CHECK(check_text("nodes:\n  a:\n    kind: source.value\n    params:\n" + indented + "      value: *a8\n")
            .find("too many values") != std::string::npos);
}
