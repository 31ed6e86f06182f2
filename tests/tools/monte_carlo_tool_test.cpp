// tests/tools/monte_carlo_tool_test.cpp: tool.monte_carlo's reply has the promised shape, says where it ran, and
// is the same for the same seed.
#include <doctest/doctest.h>

#include "loom/actors/kernels/device_choice.hpp"
#include "loom/kernels/device/device.hpp"
#include "loom/runtime/registry.hpp"
#include "tests/tools/tool_call.hpp"

using namespace loom;

TEST_CASE("tool.monte_carlo replies with quantiles of revenue and profit and the device" * doctest::timeout(30)) {
  test::running n("tool.monte_carlo", {{"device", "cpu"}});
  n.start();
  value r = test::call_tool(n, "tool.monte_carlo", {{"samples", 20000}});
  CHECK(r.find("samples")->as_int() == 20000);
  CHECK(r.find("device")->as_string() == "cpu");
  for (const char* part : {"revenue", "profit"}) {
    const value* q = r.find(part);
    REQUIRE(q != nullptr);
    CHECK(q->find("p10")->as_float() < q->find("p50")->as_float());
    CHECK(q->find("p50")->as_float() < q->find("p90")->as_float());
    CHECK(q->find("mean")->is_float());
  }
  CHECK(r.find("revenue")->find("p50")->as_float() == doctest::Approx(365 * 120 * 12.5).epsilon(0.01));
  double loss = r.find("probability_of_loss")->as_float();
  CHECK(loss >= 0);
  CHECK(loss <= 1);
}

TEST_CASE("tool.monte_carlo gives the same forecast for the same seed" * doctest::timeout(30)) {
  test::running n("tool.monte_carlo", {{"device", "cpu"}});
  n.start();
  value_map args{{"samples", 5000}, {"customers_per_day", 30.0}, {"seed", 9}};
  value a = test::call_tool(n, "tool.monte_carlo", args);
  value b = test::call_tool(n, "tool.monte_carlo", args);
  CHECK(a == b);
  args.back().second = 10;
  CHECK_FALSE(a == test::call_tool(n, "tool.monte_carlo", args));
}

TEST_CASE("tool.monte_carlo on auto says which device ran it" * doctest::timeout(60)) {
  test::running n("tool.monte_carlo", {});
  n.start();
  value r = test::call_tool(n, "tool.monte_carlo", {{"samples", 1000}});
  auto devices = kernels::find_devices();
  if (devices.empty()) {
    MESSAGE("no GPU: tool.monte_carlo ran its CPU path");
    CHECK(r.find("device")->as_string() == "cpu");
  } else {
    CHECK(r.find("device")->as_string() == "cuda:" + std::to_string(devices.front().index));
  }
}

TEST_CASE("tool.monte_carlo refuses out-of-range arguments with a message for the model" * doctest::timeout(10)) {
  test::running n("tool.monte_carlo", {{"device", "cpu"}});
  n.start();
  CHECK_THROWS_WITH_AS(test::call_tool(n, "tool.monte_carlo", {{"samples", 0}}),
                       "argument `samples`: 0 is below the minimum 1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(test::call_tool(n, "tool.monte_carlo", {{"cost_of_goods", 1.5}}),
                       "argument `cost_of_goods`: 1.5 is above the maximum 1", std::invalid_argument);
}

TEST_CASE("a kernel runs where the plan put it: the CPU when the plan says so, whatever the host has") {
  auto cpu = actors::choose_device("auto", 0, -1);
  CHECK(cpu.device == -1);
  CHECK(cpu.why == "the plan placed it on the CPU (no GPU free)");
  CHECK(actors::choose_device("cpu", 0, 0).device == -1);  // the node's own `device: cpu` wins
  if (kernels::find_devices().empty()) {
    CHECK_THROWS_WITH(actors::choose_device("cuda", 0, 0), doctest::Contains("there is no GPU"));
    CHECK(actors::choose_device("auto", 0, node_init::unplanned).device == -1);
  } else {
    CHECK(actors::choose_device("auto", 0, 0).device == 0);
    CHECK_THROWS_WITH(actors::choose_device("auto", 0, 999), doctest::Contains("GPU 999"));
  }
}
