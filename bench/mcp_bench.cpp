// bench/mcp_bench.cpp: MCP round trips, loom to loom: an mcp::client (as tool.mcp uses it) over stdio to
// `loom mcp configs/food_truck.yaml`, calling its calculator; calls per second and latency percentiles.
// Prints markdown. `build/bin/loom_mcp_bench [--calls N]` from the repository root.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "loom/runtime/mcp/client.hpp"
#include "loom/runtime/mcp/stdio.hpp"

int main(int argc, char** argv) {
  int calls = 5000;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--calls") == 0) calls = std::max(1, std::atoi(argv[i + 1]));
  using clock = std::chrono::steady_clock;
  std::string loom = std::string(LOOM_BINARY_DIR) + "/bin/loom";
  loom::mcp::client c(std::make_unique<loom::mcp::child_transport>(
      loom::mcp::process_options{{loom, "mcp", "configs/food_truck.yaml"}, {}, ""}));
  auto t0 = clock::now();
  c.initialize(std::chrono::seconds(30));
  c.list_tools(std::chrono::seconds(10));
  double start_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  c.call_tool("calc", {{"expression", "1+1"}}, std::chrono::seconds(10));  // builds the node
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(calls));
  auto begin = clock::now();
  for (int i = 0; i < calls; ++i) {
    auto s = clock::now();
    auto r = c.call_tool("calc", {{"expression", fmt::format("{} * 2 + 1", i)}}, std::chrono::seconds(10));
    us.push_back(std::chrono::duration<double, std::micro>(clock::now() - s).count());
    if (r.is_error || r.structured.value("result", -1) != i * 2 + 1) {
      fmt::print(stderr, "wrong answer at call {}: {}\n", i, r.text);
      return 1;
    }
  }
  double secs = std::chrono::duration<double>(clock::now() - begin).count();
  std::sort(us.begin(), us.end());
  auto pct = [&](double q) { return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1))]; };
  fmt::print("## MCP over stdio, loom to loom\n\n");
  fmt::print("`loom mcp configs/food_truck.yaml` started by an mcp::client; {} sequential `tools/call` of `calc`.\n\n",
             calls);
  fmt::print("| start + initialize + tools/list | calls/s | p50 us | p99 us | max us |\n|---:|---:|---:|---:|---:|\n");
  fmt::print("| {:.0f} ms | {:.0f} | {:.0f} | {:.0f} | {:.0f} |\n", start_ms, calls / secs, pct(0.5), pct(0.99),
             us.back());
  return 0;
}
