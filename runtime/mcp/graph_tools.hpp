// runtime/mcp/graph_tools.hpp: a graph as MCP tools (the tool_provider behind `loom mcp` and `loom serve
// --mcp`). Every tool node of the graph (a kind with a call_spec, except nodes that list tools of their own)
// is a tool: its call_spec's arguments as inputSchema; its reply as structuredContent (a map) and as JSON text.
// Each tool node is built once, on its first call, and called one call at a time, as in a run. The graph
// itself is one more tool, named after the graph: {prompt} enters at its input node (as in `loom serve`) and
// the result is what its output node receives (text: each value's `text` field, or the value as JSON;
// structuredContent: {output: [values]}). Each graph call is its own run; cancelling the call interrupts it;
// progress is reported every half second while it runs.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "loom/graph/graph.hpp"
#include "loom/runtime/mcp/server.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/serve/capture.hpp"
#include "loom/runtime/serve/served_graph.hpp"

namespace caf {
class actor_system;
}

namespace loom::mcp {

class graph_tools final : public tool_provider {
 public:
  struct collected;  // the values one graph call's output node received
  // `g` validated with defaults applied. Throws serve::setup_error when the input or output node cannot be
  // chosen.
  graph_tools(caf::actor_system& system, const registry& kinds, const graph::graph& g, const serve::endpoints& ends);
  ~graph_tools() override;

  std::vector<server_tool> tools() const override;
  reply call(const std::string& name, const jsonrpc::json& arguments, const call_control& ctl) override;

 private:
  struct tool_node;
  reply call_node(tool_node& t, const jsonrpc::json& arguments);
  reply run_graph(const jsonrpc::json& arguments, const call_control& ctl);

  caf::actor_system& system_;
  // Graph calls run at once, each in its own slot (loom serve's slots: the input node finds its prompt
  // there; the output node here is mcp's own collector, so the values come back as values).
  static constexpr std::size_t graph_slots = 8;
  std::shared_ptr<serve::slot_table> table_ = std::make_shared<serve::slot_table>(graph_slots);
  std::shared_ptr<std::vector<std::shared_ptr<collected>>> outputs_;
  registry kinds_;
  graph::graph graph_;
  std::optional<serve::served_graph> served_;
  std::vector<std::unique_ptr<tool_node>> nodes_;
};

}  // namespace loom::mcp
