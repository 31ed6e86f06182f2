// source.value: emits one given value `repeat` times. Every emit shares the one payload (no copies).
//   outputs: out (the value)
//   params:  value (any, required), repeat (integer, default 1, >= 0)
#include <cstdint>
#include <memory>

#include "loom/actors/kinds.hpp"

namespace loom::actors {
namespace {

class value_source final : public node {
 public:
  explicit value_source(const node_init& init)
      : value_(init.params.get("value")), left_(init.params.get_int("repeat")) {
    if (init.restored.is_int()) left_ = init.restored.as_int();  // a restart: only what is still owed
  }

  bool on_pull(context& ctx) override {
    for (std::size_t n = ctx.budget(); n > 0 && left_ > 0 && !ctx.stopping(); --n, --left_) {
      ctx.emit(value_);  // a copy of the handle, not of the payload
    }
    ctx.checkpoint(value(left_));
    return left_ > 0 && !ctx.stopping();
  }

 private:
  value value_;
  std::int64_t left_;
};

}  // namespace

kind_def value_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "source.value";
  s.doc = "emits one value, repeat times";
  s.stateful = true;  // checkpoint: how many are still owed
  s.outputs = {{"out", "the value, repeat times"}};
  s.params = {param_spec::any("value", "the value to emit (any type)").require(),
              param_spec::integer("repeat", "how many times to emit it").def(1).at_least(0)};
  return {std::move(s), [](const node_init& init) { return std::make_unique<value_source>(init); }};
}

}  // namespace loom::actors
