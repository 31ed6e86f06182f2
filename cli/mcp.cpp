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
#include <mutex>
#include <thread>

#include "cli/commands.hpp"
#include "cli/load.hpp"
#include "runtime/json.hpp"
#include "runtime/local/executor.hpp"
#include "runtime/mcp/server.hpp"
#include "runtime/mcp/stdio.hpp"
#include "runtime/schema.hpp"
#include "runtime/serve/capture.hpp"
#include "runtime/serve/served_graph.hpp"

namespace loom::cli {
namespace {

using json = nlohmann::ordered_json;

// A value as text for the model: a map's `text` field when it has one, a string as is, else JSON.
std::string render(const value& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_map())
    if (const value* t = v.find("text"); t != nullptr && t->is_string()) return t->as_string();
  return to_json(v).dump();
}

// A minimal context for calling a tool node outside a run: a tool has no ports and calls nothing.
class tool_context final : public context {
 public:
  explicit tool_context(std::string name) : name_(std::move(name)) {}
  void emit(std::size_t, value) override {}
  bool connected(std::size_t) const override { return false; }
  std::size_t budget() const override { return 0; }
  void pause_for(std::chrono::nanoseconds) override {}
  std::string_view node_name() const override { return name_; }
  int instance() const override { return 0; }
  int replicas() const override { return 1; }
  bool stopping() const override { return false; }

 private:
  std::string name_;
};

class graph_tools final : public mcp::tool_provider {
 public:
  graph_tools(caf::actor_system& system, const registry& kinds, const graph::graph& g, const serve::endpoints& ends)
      : system_(system), kinds_(kinds), graph_(g) {
    kinds_.add(serve::capture_kind(table_));
    served_.emplace(g, kinds_, ends);
    for (const auto& n : g.nodes) {
      const auto* def = kinds_.find(n.kind);
      if (def == nullptr || !def->spec.call || def->spec.call->lists_tools) continue;
      nodes_.push_back(tool_node{n.name, def, loom::params{to_value(n.params).as_map()}, {}, nullptr, nullptr});
    }
    for (auto& t : nodes_) t.mu = std::make_unique<std::mutex>();
  }

  std::vector<mcp::server_tool> tools() const override {
    std::vector<mcp::server_tool> out;
    for (const auto& t : nodes_)
      out.push_back({t.name, t.def->spec.call->doc, params_schema(t.def->spec.call->arguments)});
    std::string about = graph_.description.empty() ? fmt::format("Runs the graph `{}`", graph_.name) : graph_.description;
    out.push_back({graph_.name,
                   fmt::format("{} The prompt enters at node `{}`; the result is what node `{}` receives.", about,
                               served_->input(), served_->output()),
                   json{{"type", "object"},
                        {"properties", {{"prompt", {{"type", "string"}, {"description", "the request to the graph"}}}}},
                        {"required", {"prompt"}}}});
    return out;
  }

  reply call(const std::string& name, const json& arguments, const mcp::call_control& ctl) override {
    for (auto& t : nodes_)
      if (t.name == name) return call_node(t, arguments);
    return run_graph(arguments, ctl);
  }

 private:
  struct tool_node {
    std::string name;
    const kind_def* def;
    loom::params params;
    std::unique_ptr<node> instance;
    std::unique_ptr<tool_context> ctx;
    std::unique_ptr<std::mutex> mu;  // one call at a time per node, as in a run
  };

  reply call_node(tool_node& t, const json& arguments) {
    std::lock_guard lock(*t.mu);
    if (!t.instance) {
      auto inst = t.def->make(node_init{t.name, 0, 1, t.params, 0});
      auto ctx = std::make_unique<tool_context>(t.name);
      inst->on_start(*ctx);
      t.instance = std::move(inst);
      t.ctx = std::move(ctx);
    }
    value request = check_call_request(*t.def->spec.call, from_json(arguments));
    value r = t.instance->on_call(*t.ctx, request);
    json structured = r.is_map() ? to_json(r) : json(nullptr);
    return {r.is_map() ? to_json(r).dump() : render(r), structured};
  }

  reply run_graph(const json& arguments, const mcp::call_control& ctl) {
    if (!arguments.contains("prompt") || !arguments["prompt"].is_string())
      throw std::invalid_argument("argument `prompt`: expected a string");
    auto channel = std::make_shared<serve::output_channel>();
    auto id = table_->open(channel);
    graph::graph g = served_->instantiate(arguments["prompt"].get<std::string>(), id);
    local::run_options ro;
    ro.interrupted = ctl.cancelled;
    double tick = 0;
    ro.on_progress = [&](const local::run_report&) { ctl.progress(++tick, 0, "running"); };
    local::run_report report;
    try {
      report = local::run_graph(system_, g, kinds_, ro);
    } catch (...) {
      table_->close(id);
      throw;
    }
    table_->close(id);
    if (report.result == local::run_report::outcome::failed) throw std::runtime_error(report.error);
    if (report.result == local::run_report::outcome::interrupted) throw std::runtime_error("the run was cancelled");
    std::string text;
    value_list values;
    channel->finish({});
    while (auto v = channel->next()) {
      text += (text.empty() ? "" : "\n\n") + render(*v);
      values.push_back(std::move(*v));
    }
    return {text, json{{"output", to_json(value{std::move(values)})}}};
  }

  caf::actor_system& system_;
  std::shared_ptr<serve::channel_table> table_ = std::make_shared<serve::channel_table>();
  registry kinds_;
  graph::graph graph_;
  std::optional<serve::served_graph> served_;
  std::vector<tool_node> nodes_;
};

}  // namespace

int mcp_command(const common_options& common, const mcp_options& options) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  auto g = load(options.file, *kinds, options.sets);
  if (!g) return invalid;
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency())));
  caf::actor_system system{cfg};
  std::optional<graph_tools> tools;
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

}  // namespace loom::cli
