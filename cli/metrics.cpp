// cli/metrics.cpp: `--metrics ADDR` (see metrics.hpp).
#include "cli/metrics.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/load.hpp"

namespace loom::cli {

std::optional<std::unique_ptr<observe::metrics_server>> start_metrics(const std::string& address) {
  if (address.empty()) return std::unique_ptr<observe::metrics_server>{};
  try {
    auto server = std::make_unique<observe::metrics_server>(address);
    std::fprintf(stderr, "loom: metrics at http://%s/metrics\n", server->address().c_str());
    return server;
  } catch (const std::exception& e) {
    print_error(fmt::format("--metrics: {}", e.what()));
    return std::nullopt;
  }
}

void hold_metrics(const observe::metrics_server* server, double seconds) {
  if (!server || seconds <= 0) return;
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until && !interrupted_by_user())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace loom::cli
