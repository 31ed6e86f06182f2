// cli/ui.hpp: `--ui ADDR` on loom run and loom serve: starts the live view (runtime/observe/ui) and keeps
// the log lines of the process flowing to it while it lives.
#pragma once

#include <memory>
#include <string>

#include "loom/runtime/observe/ui/ui_server.hpp"

namespace loom::cli {

class live_view {
 public:
  // Lays `g` out and starts serving at `address`; prints where. Throws std::exception with a message for
  // print_error (a bad address, a port in use, Graphviz failing).
  live_view(const graph::graph& g, const std::string& address, observe::ui::host_map hosts = {});
  ~live_view();  // takes its sink off the logger, then stops serving
  live_view(const live_view&) = delete;
  live_view& operator=(const live_view&) = delete;

  observe::ui::ui_server& server() { return *server_; }

 private:
  std::unique_ptr<observe::ui::ui_server> server_;
};

// nullptr when `address` is empty; prints the error and returns nullptr with `failed` set when it cannot start.
std::unique_ptr<live_view> start_live_view(const graph::graph& g, const std::string& address, bool& failed,
                                           observe::ui::host_map hosts = {});

}  // namespace loom::cli
