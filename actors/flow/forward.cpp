// flow.forward: emits every value it receives, unchanged (the payload is shared, not copied).
//   inputs:  in (any)
//   outputs: out (the same values, in order)
#include <memory>

#include "loom/actors/kinds.hpp"

namespace loom::actors {
namespace {

class forward final : public node {
 public:
  void on_message(context& ctx, std::size_t port, const value& v) override { ctx.emit(0, v); }
  bool handles_runs() const override { return true; }
  bool one_output_per_input() const override { return true; }
  void on_run(context& ctx, std::size_t port, std::span<const value> values) override { ctx.emit_run(0, values); }
};

}  // namespace

kind_def forward_kind() {
  graph::kind_spec s;
  s.name = "flow.forward";
  s.doc = "emits what it receives";
  s.inputs = {{"in", "any values"}};
  s.outputs = {{"out", "the same values, in order"}};
  return {std::move(s), [](const node_init&) { return std::make_unique<forward>(); }};
}

}  // namespace loom::actors
