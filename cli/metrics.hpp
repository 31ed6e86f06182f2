// cli/metrics.hpp: `--metrics ADDR` for loom run, worker and serve.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "loom/runtime/observe/metrics_server.hpp"

namespace loom::cli {

// Starts GET /metrics on `address` and says where on stderr. An empty address: nothing (returns a null
// server, ok). A bad address or a port in use: prints the error and returns nullopt (exit status 2).
std::optional<std::unique_ptr<observe::metrics_server>> start_metrics(const std::string& address);

// Keeps the process (and its /metrics) up for `seconds` after a run, or until Ctrl-C.
void hold_metrics(const observe::metrics_server* server, double seconds);

}  // namespace loom::cli
