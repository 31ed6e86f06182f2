// graph/kind_spec.hpp: what an actor kind declares about itself, as pure data: its name, a one-line doc,
// its ports, its typed params (defaults, ranges, required) and its resource needs. Validation and
// `loom inspect` read only this; the runtime's registry pairs each spec with a factory.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loom/graph/config.hpp"
#include "loom/graph/graph.hpp"

namespace loom::graph {

class diagnostics;
class kind_catalog;

enum class param_type { boolean, integer, floating, string, list, map, any };
const char* param_type_name(param_type t);

struct param_spec {
  std::string name;
  param_type type = param_type::any;
  std::string doc;
  std::optional<config> default_value;  // unset and !required: the param is optional with no value
  bool required = false;
  std::optional<double> min, max;      // inclusive bounds for integer and floating params
  std::vector<std::string> choices;    // allowed values of a string param; empty: any string
  bool is_path = false;                // a file or folder: relative values resolve against the graph's folder

  // Fluent construction: param_spec::integer("count", "how many").def(10).at_least(0).
  static param_spec of(param_type t, std::string name, std::string doc);
  static param_spec boolean(std::string name, std::string doc) { return of(param_type::boolean, name, doc); }
  static param_spec integer(std::string name, std::string doc) { return of(param_type::integer, name, doc); }
  static param_spec floating(std::string name, std::string doc) { return of(param_type::floating, name, doc); }
  static param_spec string(std::string name, std::string doc) { return of(param_type::string, name, doc); }
  static param_spec list(std::string name, std::string doc) { return of(param_type::list, name, doc); }
  static param_spec map(std::string name, std::string doc) { return of(param_type::map, name, doc); }
  static param_spec any(std::string name, std::string doc) { return of(param_type::any, name, doc); }
  param_spec&& def(config value) && { default_value = std::move(value); return std::move(*this); }
  param_spec&& require() && { required = true; return std::move(*this); }
  param_spec&& at_least(double v) && { min = v; return std::move(*this); }
  param_spec&& at_most(double v) && { max = v; return std::move(*this); }
  param_spec&& one_of(std::vector<std::string> c) && { choices = std::move(c); return std::move(*this); }
  param_spec&& file_path() && { is_path = true; return std::move(*this); }
};

// What validation (`loom validate`, and every run before it starts) says about an output port that no edge
// leaves, at the node, naming the port.
enum class if_unconnected {
  ignore,  // what is sent there is dropped (and counted): nothing to say
  warn,    // a value sent there fails the run, and one may be (flow.router's `default`, flow.vote's
           // `disagree`): a warning
  error,   // a value will certainly be sent there and fail the run (a router with no route but `default`),
           // or the kind requires the port consumed: an error
};

struct port_spec {
  std::string name;
  std::string doc;
  if_unconnected unconnected = if_unconnected::ignore;
  std::string hint;  // with warn or error: what else the user can do, for that diagnostic
};

struct resource_spec {
  double cpus = 0;
  std::uint64_t memory = 0;
  int gpus = 0;
  bool cpu_fallback = true;  // with gpus > 0: runs on the CPU path when no GPU is placed
};

// A kind that can be called as a tool (request -> reply, as an agent calls it) declares its call: what it
// does, for the model, and its arguments, from which the tool's JSON schema is generated.
struct call_spec {
  std::string doc;
  std::vector<param_spec> arguments;  // the request is a map of these
  // The node offers several tools found at run time (tool.mcp) instead of being one tool itself. Its
  // arguments are then `tool` (string, optional) and `arguments` (map): a request without `tool` is a list
  // request, answered {tools: [{name, description, input_schema}]}; {tool: NAME, arguments: {...}} calls one.
  // An agent asks each such node for its list at the start of a task and offers each tool to its model as
  // NODE__NAME (see docs/mcp.md). Both go through the ordinary call path, so it works across hosts too.
  bool lists_tools = false;
};

struct kind_spec {
  std::string name;  // "family.name", e.g. "source.sequence"
  std::string doc;   // one line
  std::vector<port_spec> inputs;
  std::vector<port_spec> outputs;
  std::vector<param_spec> params;
  resource_spec resources;
  // Kinds whose output ports depend on their params (flow.router) compute them here; the params given
  // are the node's params map as written. Unset: `outputs` is the whole list.
  std::function<std::vector<port_spec>(const config& params)> outputs_for;
  // Set for kinds that can be named in a node's `tools:` and called.
  std::optional<call_spec> call;
  // The kind blocks (network I/O, long compute): each instance gets its own thread instead of holding one
  // of the shared scheduler's.
  bool blocking = false;
  // Kinds that block only with some params (agent.llm: its http backend waits on the network, its
  // scripted one answers at once) decide per node here; the params are the node's, defaults applied.
  // Unset: `blocking`.
  std::function<bool(const config& params)> blocking_for;
  // The kind holds state across values (sources, sinks, batch, gather): after a failure the fresh instance
  // gets its checkpoint and the inputs since then again. Stateless kinds (forward, router, an agent without
  // memory across tasks, tools) can be restarted, or moved to another host, with nothing carried over.
  bool stateful = false;
  // Kinds that hold state only with some params (agent.llm with `memory: N` keeps its last N exchanges)
  // decide per node here, as blocking_for does; the params are the node's, defaults applied. Unset:
  // `stateful`.
  std::function<bool(const config& params)> stateful_for;
  // Its checkpoint is what a conversation remembers (agent.llm's memory), not how far a run got: `loom
  // serve --state` keeps it per thread, from one request's run to the next (docs/durability.md, "Threads").
  // Only stateful nodes of such kinds are kept; a source's or sink's checkpoint (its progress in one run)
  // never is.
  bool thread_state = false;
  // The capacity an edge into or out of this kind gets when the graph does not size it (no `capacity:` on
  // the edge, no `defaults.capacity`), if larger than the default: a kind on its own thread that handles
  // runs (a Python step) wakes its thread once per run and once per credit, so it wants long runs both
  // ways. 0: the graph's default.
  std::int64_t window = 0;
  // Checks beyond each param's type and range (an agent's scripted rules against its tools), run by
  // validate() once the node's params have the types its spec declares; each problem is reported at the
  // location of the value at fault (graph::config::where()). Unset: none.
  std::function<void(const graph& g, const node& n, const kind_catalog& catalog, diagnostics& diags)> check;

  // A whole small graph file that uses the kind (`loom inspect` prints it, docs/kinds.md shows it); a test
  // loads and validates every kind's example. Empty: none.
  std::string example;
  // Where a kind that is not built in comes from, for a host that lacks it: "python module acme.kinds".
  // Empty: built in (or a C++ program's own).
  std::string origin;

  const param_spec* find_param(std::string_view n) const;
  // Whether a node with these params blocks: blocking_for(params) when set, else blocking.
  bool blocks(const config& node_params) const;
  // Whether a node with these params holds state across values: stateful_for(params) when set, else stateful.
  bool holds_state(const config& node_params) const;
  // The node's output ports: outputs_for(params) when set, else outputs.
  std::vector<port_spec> output_ports(const config& params) const;
};

// Where validation looks kinds up. The runtime's registry is one; tests may make their own.
class kind_catalog {
 public:
  virtual ~kind_catalog() = default;
  virtual const kind_spec* find_kind(std::string_view name) const = 0;
  virtual std::vector<std::string> kind_names() const = 0;  // sorted
};

}  // namespace loom::graph
