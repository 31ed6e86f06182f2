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
#include "loom/actors/agents/agent_loop.hpp"
#include "loom/graph/graph.hpp"
#include "loom/runtime/detached_context.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/mcp/graph_tools.hpp"
#include "loom/runtime/mcp/http_server.hpp"
#include "loom/runtime/serve/server.hpp"
#include "loom/runtime/mcp/server.hpp"
#include "loom/runtime/mcp/stdio.hpp"
#include "loom/runtime/schema.hpp"

namespace loom::cli {
namespace {


// One argument line from a JSON schema property, in the columns `loom inspect` uses for a kind's call.
void print_schema_arguments(const nlohmann::ordered_json& schema) {
  if (!schema.is_object() || !schema.contains("properties") || !schema["properties"].is_object()) {
    std::printf("  (no arguments)\n");
    return;
  }
  std::vector<std::string> required;
  if (schema.contains("required") && schema["required"].is_array())
    for (const auto& r : schema["required"])
      if (r.is_string()) required.push_back(r.get<std::string>());
  for (const auto& [name, p] : schema["properties"].items()) {
    std::string type = "any";
    if (p.is_object() && p.contains("type")) type = p["type"].is_string() ? p["type"].get<std::string>() : p["type"].dump();
    bool req = std::find(required.begin(), required.end(), name) != required.end();
    std::string def = req ? "required" : p.is_object() && p.contains("default") ? "default " + p["default"].dump() : "optional";
    std::string doc = p.is_object() && p.contains("description") && p["description"].is_string()
                          ? p["description"].get<std::string>()
                          : "";
    std::printf("  %-21s %-7s %-33s %s\n", name.c_str(), type.c_str(), def.c_str(), doc.c_str());
  }
}

}  // namespace

int inspect_node_command(const common_options& common, const std::string& file, const std::string& node_name) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  auto g = load(file, *kinds, {});
  if (!g) return invalid;
  const graph::node* n = nullptr;
  for (const auto& x : g->nodes) n = x.name == node_name ? &x : n;
  if (n == nullptr) {
    print_error(fmt::format("{}: no node `{}` in graph `{}`", file, node_name, g->name));
    return invalid;
  }
  const auto* def = kinds->find(n->kind);
  if (!def->spec.call || !def->spec.call->lists_tools) return inspect_command(common, n->kind);
  value listed;
  try {
    auto inst = def->make(node_init{n->name, 0, 1, loom::params{to_value(n->params).as_map()}, 0});
    detached_context ctx(n->name);
    inst->on_start(ctx);
    listed = inst->on_call(ctx, check_call_request(*def->spec.call, value{value_map{}}));
    inst->on_finish(ctx);
  } catch (const std::exception& e) {
    print_error(e.what());
    return run_failed;
  }
  const value* tools = listed.find("tools");
  const value* server = listed.find("server");
  std::printf("%s (%s): %zu tools from %s\n", n->name.c_str(), n->kind.c_str(),
              tools != nullptr && tools->is_list() ? tools->as_list().size() : 0,
              server != nullptr ? to_text(*server).c_str() : "the node");
  if (tools == nullptr || !tools->is_list()) return ok;
  for (const auto& t : tools->as_list()) {
    const value* name = t.find("name");
    const value* doc = t.find("description");
    const value* schema = t.find("input_schema");
    if (name == nullptr) continue;
    std::printf("\n%s: %s\n", agents::offered_tool_name(n->name, to_text(*name)).c_str(),
                doc != nullptr ? to_text(*doc).c_str() : "");
    print_schema_arguments(schema != nullptr ? to_json(*schema) : nlohmann::ordered_json());
  }
  return ok;
}

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
                                    const graph::graph& g, const std::string& input, const std::string& output,
                                    std::chrono::milliseconds session_idle) {
  struct route {
    route(caf::actor_system& system, const registry& kinds, const graph::graph& g, const serve::endpoints& ends,
          mcp::http_endpoint_options o)
        : tools(system, kinds, g, ends), endpoint(tools, mcp::server_info{"loom:" + g.name, "0.1", 8}, o) {}
    mcp::graph_tools tools;
    mcp::http_endpoint endpoint;
  };
  mcp::http_endpoint_options o;
  o.session_idle = session_idle;
  auto r = std::make_shared<route>(system, kinds, g, serve::endpoints{input, output}, o);
  so.extra_routes = [r](http::listener& l) { r->endpoint.attach(l, "/mcp"); };
  so.browser_paths.push_back("/mcp");  // an MCP client may be a web page: Host is checked (DNS rebinding)
  return r;
}

}  // namespace loom::cli
