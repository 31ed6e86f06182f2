// flow.throttle: passes values on at no more than `rate` per second. Value k is due at start + k / rate;
// after each emit it asks the runtime (ctx.pause_for) to deliver nothing until the next one is due. Keeping
// a schedule, not a fixed gap, holds the rate even when a wake-up comes late (timers are coarser than the
// gap at high rates); the lateness it may make up is bounded, so an idle spell gives no burst.
//   inputs:  in (any)
//   outputs: out (the same values, in order)
//   params:  rate (floating, required, >= 0.001): messages per second
#include <algorithm>
#include <chrono>
#include <memory>

#include "loom/actors/kinds.hpp"

namespace loom::actors {
namespace {

class throttle final : public node {
 public:
  explicit throttle(const params& p)
      : gap_(std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(1.0 / p.get_float("rate")))),
        max_debt_(std::min<std::chrono::nanoseconds>(4 * gap_, std::chrono::milliseconds(20))) {}

  void on_message(context& ctx, std::size_t port, const value& v) override {
    auto now = clock::now();
    next_ = started_ ? std::max(next_, now - max_debt_) : now;
    started_ = true;
    ctx.emit(0, v);
    next_ += gap_;
    if (next_ > now) ctx.pause_for(next_ - now);
  }

 private:
  using clock = std::chrono::steady_clock;
  std::chrono::nanoseconds gap_, max_debt_;
  clock::time_point next_{};  // when the next value is due
  bool started_ = false;
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
