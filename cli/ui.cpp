// cli/ui.cpp: the live view of `loom run --ui` and `loom serve --ui`.
#include "cli/ui.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "cli/load.hpp"

namespace loom::cli {

live_view::live_view(const graph::graph& g, const std::string& address, observe::ui::host_map hosts) {
  observe::ui::ui_options o;
  observe::ui::parse_address(address, o);
  o.hosts = std::move(hosts);
  server_ = std::make_unique<observe::ui::ui_server>(g, std::move(o));
  server_->start();
  // Set up before the run's threads start, and taken off after they have ended: spdlog's sink list is not
  // guarded against changes while it logs.
  spdlog::default_logger()->sinks().push_back(server_->log_sink());
  std::fprintf(stderr, "loom: live view of `%s` at %s\n", g.name.c_str(), server_->url().c_str());
  std::fflush(stderr);
}

live_view::~live_view() {
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), server_->log_sink()), sinks.end());
}

std::unique_ptr<live_view> start_live_view(const graph::graph& g, const std::string& address, bool& failed,
                                           observe::ui::host_map hosts) {
  failed = false;
  if (address.empty()) return nullptr;
  try {
    return std::make_unique<live_view>(g, address, std::move(hosts));
  } catch (const std::exception& e) {
    print_error(e.what());
    failed = true;
    return nullptr;
  }
}

}  // namespace loom::cli
