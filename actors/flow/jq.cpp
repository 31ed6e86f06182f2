// flow.jq: runs a jq program (Debian's libjq 1.6) on each value and emits every output it gives: none
// (a filter), one (a map) or many (a flatten), in order.
//   inputs:  in (any)
//   outputs: out (the program's outputs)
//   params:  program (string, required), args (map, default {}: each NAME -> value is $NAME in the program)
// The program is compiled once, when the node starts (and by `loom validate`, which reports a syntax
// error at the `program` param); each instance has its own jq_state.
//
// Numbers, bytes and tensors cross into jq and back as actors/flow/jq_program.hpp says.
#include <fmt/format.h>

#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "loom/actors/flow/jq_program.hpp"
#include "loom/actors/kinds.hpp"
#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/json.hpp"

namespace loom::actors {
namespace {

class jq_node final : public node {
 public:
  explicit jq_node(const node_init& init) : program_(init.params.get_string("program"), init.params.get("args")) {
    if (!program_.ok())
      throw std::invalid_argument(fmt::format("flow.jq `{}`: program: {}", init.name, program_.errors()));
  }

  void on_message(context& ctx, std::size_t port, const value& v) override { run(ctx, v); }
  bool handles_runs() const override { return true; }
  void on_run(context& ctx, std::size_t port, std::span<const value> values) override {
    for (const auto& v : values) run(ctx, v);
  }

 private:
  void run(context& ctx, const value& v) {
    try {
      program_.run(v, [&](value out) { ctx.emit(0, std::move(out)); });
    } catch (const jq::failure& e) {
      throw std::runtime_error(fmt::format("flow.jq `{}`: jq failed on value {}: {}", ctx.node_name(),
                                           jq::excerpt(v), e.what()));
    }
  }

  jq::program program_;
};

// Validation: the program compiles with the node's args, reported at the `program` param.
void check_program(const graph::graph& g, const graph::node& n, const graph::kind_catalog& catalog,
                   graph::diagnostics& diags) {
  const graph::config* args = n.params.find("args");
  jq::check_param(n, "flow.jq", "program", args != nullptr ? to_value(*args) : value{value_map{}}, diags);
}

}  // namespace

kind_def jq_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "flow.jq";
  s.doc = "runs a jq program on each value and emits its every output (none: filter, one: map, many: flatten)";
  s.example = R"yaml(graph: jq_example
nodes:
  orders: {kind: source.value, params: {value: {id: 7, price: 12.5, qty: 10}}}
  big:
    kind: flow.jq
    params: {program: 'select(.price * .qty > $min) | {id, total: (.price * .qty)}', args: {min: 100}}
  out: {kind: sink.stdout, params: {format: jsonl}}
edges:
  - orders -> big -> out
)yaml";
  s.inputs = {{"in", "any values (as JSON)"}};
  s.outputs = {{"out", "every output of the program, in order"}};
  s.params = {
      param_spec::string("program", "the jq program (jq 1.6), e.g. `select(.x > 1) | {id, x}` (numbers: "
                         "docs/graph-format.md)")
          .require(),
      param_spec::map("args", "NAME -> value, each available to the program as $NAME (like jq --arg)")
          .def(graph::config(graph::config_map{})),
  };
  s.check = check_program;
  return {std::move(s), [](const node_init& init) { return std::make_unique<jq_node>(init); }};
}

}  // namespace loom::actors
