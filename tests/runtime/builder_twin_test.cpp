// tests/runtime/builder_twin_test.cpp: the C++ builder example and configs/triage.yaml are the same graph.
#include <doctest/doctest.h>

#include "examples/builder/triage_graph.hpp"
#include "graph/load.hpp"

TEST_CASE("the triage graph built in C++ equals its YAML twin") {
  loom::graph::diagnostics d;
  auto yaml = loom::graph::load_graph_file(std::string(LOOM_SOURCE_DIR) + "/configs/triage.yaml", d);
  INFO(d.str());
  REQUIRE(yaml.has_value());
  CHECK(*yaml == loom::examples::triage_graph());
}
