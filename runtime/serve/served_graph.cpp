// runtime/serve/served_graph.cpp: choosing the input and output nodes, and rewriting the graph around them.
#include "loom/runtime/serve/served_graph.hpp"

#include <fmt/format.h>

#include <vector>

#include "loom/graph/diagnostics.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/serve/capture.hpp"

namespace loom::serve {
namespace {

enum class role { input, output };

const char* role_word(role r) { return r == role::input ? "source" : "sink"; }
const char* role_flag(role r) { return r == role::input ? "--input" : "--output"; }

// Sources have no input ports, sinks no output ports; tools (called, not wired) are neither.
bool has_role(const graph::node& n, const registry& kinds, role r) {
  const auto* k = kinds.find_kind(n.kind);
  if (!k || k->call) return false;
  return r == role::input ? k->inputs.empty() : k->output_ports(n.params).empty();
}

std::size_t pick(const graph::graph& g, const registry& kinds, const std::string& wanted, role r) {
  std::vector<std::string> names;
  for (const auto& n : g.nodes) names.push_back(n.name);
  if (!wanted.empty()) {
    for (std::size_t i = 0; i < g.nodes.size(); ++i)
      if (g.nodes[i].name == wanted) return i;
    throw setup_error(fmt::format("{} `{}`: graph `{}` has no such node; {}", role_flag(r), wanted, g.name,
                                  graph::suggest(wanted, names)));
  }
  std::vector<std::size_t> found;
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    if (has_role(g.nodes[i], kinds, r)) found.push_back(i);
  if (found.size() == 1) return found[0];
  if (found.empty())
    throw setup_error(fmt::format("graph `{}` has no {} node; name the node that {} with {} NODE (nodes: {})",
                                  g.name, role_word(r), r == role::input ? "takes the request" : "gives the answer",
                                  role_flag(r), fmt::join(names, ", ")));
  std::vector<std::string> candidates;
  for (auto i : found) candidates.push_back(g.nodes[i].name);
  throw setup_error(fmt::format("graph `{}` has {} {} nodes ({}); choose one with {} NODE", g.name, found.size(),
                                role_word(r), fmt::join(candidates, ", "), role_flag(r)));
}

// A fresh node of `kind` in place of `old`: same name and source location, nothing else kept.
graph::node replace(const graph::node& old, std::string kind, graph::config_map params) {
  graph::node n;
  n.name = old.name;
  n.kind = std::move(kind);
  n.params = std::move(params);
  n.where = old.where;
  return n;
}

}  // namespace

served_graph::served_graph(const graph::graph& g, const registry& kinds, const endpoints& choice) : template_(g) {
  input_ = pick(g, kinds, choice.input, role::input);
  output_ = pick(g, kinds, choice.output, role::output);
  const auto& in = g.nodes[input_].name;
  const auto& out = g.nodes[output_].name;
  if (input_ == output_)
    throw setup_error(fmt::format("node `{}` cannot be both the input and the output; choose them with --input "
                                  "and --output",
                                  in));
  for (auto& e : template_.edges) {
    if (e.to.node == in)
      throw setup_error(fmt::format("--input `{}` has an incoming edge ({} -> {}); the input must be a node nothing "
                                    "feeds (a source)",
                                    in, e.from.str(), e.to.str()));
    if (e.from.node == out)
      throw setup_error(fmt::format("--output `{}` has an outgoing edge ({} -> {}); the output must be a node that "
                                    "feeds nothing (a sink)",
                                    out, e.from.str(), e.to.str()));
    if (e.from.node == in) e.from.port.clear();  // source.value's one port, `out`
    if (e.to.node == out) e.to.port.clear();     // serve.capture's one port, `in`
  }
  bool fed = false;
  for (const auto& e : template_.edges) fed = fed || e.to.node == out;
  if (!fed) throw setup_error(fmt::format("--output `{}`: no edge leads into it, so it would never answer", out));

  template_.nodes[input_] = replace(g.nodes[input_], input_kind_name, {{"slot", 0}});
  template_.nodes[output_] = replace(g.nodes[output_], capture_kind_name, {{"slot", 0}});
  graph::diagnostics diags;
  graph::validate(template_, kinds, diags);
  auto streamed = template_;
  streamed.nodes[output_].kind = stream_capture_kind_name;
  graph::validate(streamed, kinds, diags);
  if (diags.has_errors())
    throw setup_error(fmt::format("graph `{}` with `{}` as the input and `{}` as the output is not valid:\n{}",
                                  g.name, in, out, diags.str()));
  graph::apply_defaults(template_, kinds);
}

graph::graph served_graph::instantiate(std::size_t slot, bool stream) const {
  auto g = template_;
  auto s = static_cast<std::int64_t>(slot);
  g.nodes[input_].params.set("slot", s);
  g.nodes[output_].params.set("slot", s);
  if (stream) g.nodes[output_].kind = stream_capture_kind_name;
  return g;
}

}  // namespace loom::serve
