// tests/runtime/builder_twin_test.cpp: the C++ builder examples and their YAML twins (configs/triage.yaml,
// configs/food_truck.yaml) are the same graphs.
#include <doctest/doctest.h>

#include "examples/builder/triage_graph.hpp"
#include "examples/food_truck/food_truck_graph.hpp"
#include "loom/graph/load.hpp"

TEST_CASE("the triage graph built in C++ equals its YAML twin") {
  loom::graph::diagnostics d;
  auto yaml = loom::graph::load_graph_file(std::string(LOOM_SOURCE_DIR) + "/configs/triage.yaml", d);
  INFO(d.str());
  REQUIRE(yaml.has_value());
  CHECK(*yaml == loom::examples::triage_graph());
}

TEST_CASE("the food truck graph built in C++ equals configs/food_truck.yaml") {
  loom::graph::diagnostics d;
  auto yaml = loom::graph::load_graph_file(std::string(LOOM_SOURCE_DIR) + "/configs/food_truck.yaml", d);
  INFO(d.str());
  REQUIRE(yaml.has_value());
  auto built = loom::examples::food_truck_graph();
  // Node by node first, so that a difference names the node.
  REQUIRE(yaml->nodes.size() == built.nodes.size());
  for (std::size_t i = 0; i < built.nodes.size(); ++i) {
    INFO("node " << i << ": yaml `" << yaml->nodes[i].name << "`, builder `" << built.nodes[i].name << "`: "
                 << yaml->nodes[i].params.str() << " vs " << built.nodes[i].params.str());
    CHECK(yaml->nodes[i] == built.nodes[i]);
  }
  CHECK(*yaml == built);
}
