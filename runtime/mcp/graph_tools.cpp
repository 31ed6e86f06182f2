// runtime/mcp/graph_tools.cpp: a graph as MCP tools (see graph_tools.hpp).
#include "loom/runtime/mcp/graph_tools.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <mutex>

#include "loom/runtime/detached_context.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/observe/node_probes.hpp"
#include "loom/runtime/schema.hpp"

namespace loom::mcp {
namespace {

using json = nlohmann::ordered_json;

// A value as text for the model: a map's `text` field when it has one, a string as is, else JSON.
std::string render(const value& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_map())
    if (const value* t = v.find("text"); t != nullptr && t->is_string()) return t->as_string();
  return to_json(v).dump();
}


}  // namespace

struct graph_tools::tool_node {
  std::string name;
  const kind_def* def;
  loom::params params;
  std::unique_ptr<node> instance;
  std::unique_ptr<detached_context> ctx;
  std::mutex mu;  // one call at a time per node, as in a run
};

struct graph_tools::collected {
  std::mutex m;
  value_list values;
};

namespace {

// The output node of a graph call: keeps every value it receives, for structuredContent.
class collect_node final : public node {
 public:
  explicit collect_node(std::shared_ptr<graph_tools::collected> c) : c_(std::move(c)) {}
  void on_message(context&, std::size_t, const value& v) override {
    std::lock_guard lock(c_->m);
    c_->values.push_back(v);
  }

 private:
  std::shared_ptr<graph_tools::collected> c_;
};

}  // namespace

graph_tools::graph_tools(caf::actor_system& system, const registry& kinds, const graph::graph& g,
                         const serve::endpoints& ends)
    : system_(system), kinds_(kinds), graph_(g) {
  outputs_ = std::make_shared<std::vector<std::shared_ptr<collected>>>(graph_slots);
  kinds_.add(serve::input_kind(table_));
  kinds_.add(serve::stream_capture_kind(table_));  // known to served_graph; graph calls use the whole form
  {
    auto spec = serve::capture_kind(table_).spec;  // the same declaration, mcp's own collecting node
    kinds_.add({std::move(spec), [outputs = outputs_](const node_init& init) -> std::unique_ptr<node> {
                  return std::make_unique<collect_node>(outputs->at(static_cast<std::size_t>(init.params.get_int("slot"))));
                }});
  }
  served_.emplace(g, kinds_, ends);
  for (const auto& n : g.nodes) {
    const auto* def = kinds_.find(n.kind);
    if (def == nullptr || !def->spec.call || def->spec.call->lists_tools) continue;
    auto t = std::make_unique<tool_node>();
    t->name = n.name;
    t->def = def;
    t->params = loom::params{to_value(n.params).as_map()};
    nodes_.push_back(std::move(t));
  }
}

graph_tools::~graph_tools() = default;

std::vector<server_tool> graph_tools::tools() const {
  std::vector<server_tool> out;
  for (const auto& t : nodes_) out.push_back({t->name, t->def->spec.call->doc, params_schema(t->def->spec.call->arguments)});
  std::string about = graph_.description.empty() ? fmt::format("Runs the graph `{}`.", graph_.name) : graph_.description;
  out.push_back({graph_.name,
                 fmt::format("{} The prompt enters at node `{}`; the result is what node `{}` receives.", about,
                             served_->input(), served_->output()),
                 json{{"type", "object"},
                      {"properties", {{"prompt", {{"type", "string"}, {"description", "the request to the graph"}}}}},
                      {"required", {"prompt"}}}});
  return out;
}

tool_provider::reply graph_tools::call(const std::string& name, const json& arguments, const call_control& ctl) {
  for (auto& t : nodes_)
    if (t->name == name) return call_node(*t, arguments);
  return run_graph(arguments, ctl);
}

tool_provider::reply graph_tools::call_node(tool_node& t, const json& arguments) {
  std::lock_guard lock(t.mu);
  if (!t.instance) {
    auto inst = t.def->make(node_init{t.name, 0, 1, t.params, 0});
    auto ctx = std::make_unique<detached_context>(t.name);
    inst->on_start(*ctx);
    t.instance = std::move(inst);
    t.ctx = std::move(ctx);
  }
  value request = check_call_request(*t.def->spec.call, from_json(arguments));
  value r = t.instance->on_call(*t.ctx, request);
  json structured = r.is_map() ? to_json(r) : json(nullptr);
  return {r.is_map() ? to_json(r).dump() : render(r), structured};
}

tool_provider::reply graph_tools::run_graph(const json& arguments, const call_control& ctl) {
  if (!arguments.contains("prompt") || !arguments["prompt"].is_string())
    throw std::invalid_argument("argument `prompt`: expected a string");
  auto slot = table_->acquire();
  if (!slot) throw std::runtime_error(fmt::format("the graph is busy: {} calls of it are running", graph_slots));
  struct release_slot {
    serve::slot_table& t;
    std::size_t s;
    ~release_slot() { t.release(s); }
  } releaser{*table_, *slot};
  auto out = std::make_shared<collected>();
  (*outputs_)[*slot] = out;
  table_->set(*slot, {arguments["prompt"].get<std::string>(), nullptr});
  graph::graph g = served_->instantiate(*slot, false);
  local::run_options ro;
  ro.interrupted = ctl.cancelled;
  ro.probes = observe::probes_for();  // tool calls counted
  double tick = 0;
  ro.on_progress = [&](const local::run_report&) { ctl.progress(++tick, 0, "running"); };
  auto report = local::run_graph(system_, g, kinds_, ro);
  if (report.result == local::run_report::outcome::failed) throw std::runtime_error(report.error);
  if (report.result == local::run_report::outcome::interrupted) throw std::runtime_error("the run was cancelled");
  std::string text;
  value_list values;
  {
    std::lock_guard lock(out->m);
    values = std::move(out->values);
  }
  for (const auto& v : values) text += (text.empty() ? "" : "\n\n") + render(v);
  return {text, json{{"output", to_json(value{std::move(values)})}}};
}

}  // namespace loom::mcp
