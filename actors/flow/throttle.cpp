// flow.throttle: passes values on at no more than `rate` per second: after each emit it asks the runtime
// (ctx.pause_for) to deliver nothing to it for 1s / rate.
//   inputs:  in (any)
//   outputs: out (the same values, in order)
//   params:  rate (floating, required, >= 0.001): messages per second
#include <chrono>
#include <memory>

#include "actors/kinds.hpp"

namespace loom::actors {
namespace {

class throttle final : public node {
 public:
  explicit throttle(const params& p)
      : gap_(std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(1.0 / p.get_float("rate")))) {}

  void on_message(context& ctx, std::size_t port, const value& v) override {
    ctx.emit(0, v);
    ctx.pause_for(gap_);
  }

 private:
  std::chrono::nanoseconds gap_;
};

}  // namespace

kind_def throttle_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "flow.throttle";
  s.doc = "passes values on at most rate per second";
  s.inputs = {{"in", "any values"}};
  s.outputs = {{"out", "the same values, in order, spaced by 1s / rate"}};
  s.params = {param_spec::floating("rate", "messages per second").require().at_least(0.001)};
  return {std::move(s), [](const node_init& init) { return std::make_unique<throttle>(init.params); }};
}

}  // namespace loom::actors
