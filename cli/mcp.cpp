// cli/mcp.cpp: `loom mcp FILE`: a graph as an MCP server over stdio. Every tool node of the graph is an MCP
// tool (its call_spec as inputSchema; its reply as structuredContent and as JSON text), and the graph itself
// is one more tool, named after the graph, whose input is {prompt} and whose result is what the graph's
// output node (its one sink, or --output) receives. Nothing but MCP messages is written on stdout; logs go to
// stderr. The server ends when the client closes stdin.
#include <caf/all.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "cli/commands.hpp"
#include "cli/load.hpp"
#include "runtime/mcp/graph_tools.hpp"
#include "runtime/mcp/http_server.hpp"
#include "runtime/serve/server.hpp"
#include "runtime/mcp/server.hpp"
#include "runtime/mcp/stdio.hpp"

namespace loom::cli {

int mcp_command(const common_options& common, const mcp_options& options) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  auto g = load(options.file, *kinds, options.sets);
  if (!g) return invalid;
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency())));
  caf::actor_system system{cfg};
  std::optional<mcp::graph_tools> tools;
  try {
    tools.emplace(system, *kinds, *g, serve::endpoints{options.input, options.output});
  } catch (const serve::setup_error& e) {
    print_error(e.what());
    return invalid;
  }
  std::fprintf(stderr, "loom: serving graph `%s` over MCP on stdio (%zu tools)\n", g->name.c_str(),
               tools->tools().size());
  std::fflush(stderr);
  mcp::fd_transport stdio(STDIN_FILENO, STDOUT_FILENO);
  {
    mcp::server server(*tools, mcp::server_info{"loom:" + g->name, "0.1", 8});
    server.serve(stdio);
  }
  return ok;
}

std::shared_ptr<void> add_mcp_route(serve::server_options& so, caf::actor_system& system, const registry& kinds,
                                    const graph::graph& g, const std::string& input, const std::string& output) {
  struct route {
    route(caf::actor_system& system, const registry& kinds, const graph::graph& g, const serve::endpoints& ends)
        : tools(system, kinds, g, ends), endpoint(tools, mcp::server_info{"loom:" + g.name, "0.1", 8}) {}
    mcp::graph_tools tools;
    mcp::http_endpoint endpoint;
  };
  auto r = std::make_shared<route>(system, kinds, g, serve::endpoints{input, output});
  so.extra_routes = [r](httplib::Server& http) { r->endpoint.attach(http, "/mcp"); };
  return r;
}

}  // namespace loom::cli
