// examples/food_truck/food_truck.cpp: the flagship graph (configs/food_truck.yaml) built in C++, validated and
// run in this process. It writes the same file as `loom run configs/food_truck.yaml`.
// Run from the repository root: build/bin/loom_example_food_truck
#include <cstdio>

#include "examples/food_truck/food_truck_graph.hpp"
#include "examples/run_example.hpp"

int main() {
  int status = loom::examples::run_example(loom::examples::food_truck_graph());
  if (status == 0) std::printf("launch package: out/launch_package.md\n");
  return status;
}
