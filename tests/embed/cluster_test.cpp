// runtime::run_cluster: the embedding API drives two real `loom worker` processes on loopback, as
// `loom run --cluster` does, and gets the report back as data.
#include <doctest/doctest.h>

#include <sstream>

#include "loom/loom.hpp"
#include "tests/cluster/harness.hpp"

using namespace loom::test::cluster;

TEST_CASE("runtime::run_cluster runs a graph across two worker processes with exact output" * doctest::timeout(60)) {
  cluster_dir d("embed");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});

  loom::runtime rt({.threads = 2});
  loom::graph::builder g("embedded_cluster");
  g.node("numbers", "source.sequence").param("count", 3000).on_host("a");
  g.node("pass", "flow.forward").on_host("b");
  g.node("out", "sink.file").param("path", (d.dir / "out/numbers.jsonl").string()).on_host("a");
  g.chain({"numbers", "pass", "out"});
  std::vector<std::string> lines;
  auto report = rt.run_cluster(g.build(), {.cluster = cluster.string(), .log = [&](const std::string& l) {
                                             lines.push_back(l);
                                           }});
  INFO(report.error, "\n", a.log(), "\n", b.log());
  REQUIRE(report.ok());
  std::istringstream text(read_file(d.dir / "out/numbers.jsonl"));
  int expected = 0;
  for (std::string line; std::getline(text, line); ++expected) REQUIRE(std::stoi(line) == expected);
  CHECK(expected == 3000);
  std::uint64_t pass_in = 0, pass_out = 0;
  for (const auto& n : report.nodes)
    if (n.node == "pass") pass_in += n.in, pass_out += n.out;
  CHECK(pass_in == 3000);
  CHECK(pass_out == 3000);
  CHECK_FALSE(lines.empty());  // the driver's progress lines reached the program

  // A plan that cannot be made is a graph_error naming the host.
  loom::graph::builder bad("nowhere");
  bad.node("numbers", "source.sequence").param("count", 3).on_host("c");
  bad.node("out", "sink.count");
  bad.chain({"numbers", "out"});
  try {
    rt.run_cluster(bad.build(), {.cluster = cluster.string()});
    FAIL("no graph_error");
  } catch (const loom::graph_error& e) {
    CHECK(std::string(e.what()).find("`c`") != std::string::npos);
  }
}
