// source.sequence: emits the integers start, start+step, ... (`count` of them).
//   outputs: out (integer)
//   params:  count (integer, default 10, >= 0), start (integer, default 0), step (integer, default 1)
// Emits at most ctx.budget() values per pull and stops early once the run is stopping.
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "loom/actors/kinds.hpp"

namespace loom::actors {
namespace {

class sequence final : public node {
 public:
  explicit sequence(const node_init& init)
      : next_(init.params.get_int("start")), step_(init.params.get_int("step")), left_(init.params.get_int("count")) {
    if (init.restored.is_int()) {  // a restart: go on after the values already emitted
      auto done = std::min(init.restored.as_int(), left_);
      next_ += done * step_;
      left_ -= done;
      emitted_ = done;
    }
  }

  bool on_pull(context& ctx) override {
    // Up to the budget, in runs of at most 64 (one append each).
    std::array<value, 64> run;
    for (std::size_t n = ctx.budget(); n > 0 && left_ > 0 && !ctx.stopping();) {
      auto k = std::min<std::size_t>({n, static_cast<std::size_t>(left_), run.size()});
      for (std::size_t i = 0; i < k; ++i, next_ += step_) run[i] = value(next_);
      ctx.emit_run(0, std::span<const value>(run.data(), k));
      n -= k;
      left_ -= static_cast<std::int64_t>(k);
      emitted_ += static_cast<std::int64_t>(k);
    }
    ctx.checkpoint(value(emitted_));
    return left_ > 0 && !ctx.stopping();
  }

 private:
  std::int64_t next_, step_, left_, emitted_ = 0;
};

}  // namespace

kind_def sequence_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "source.sequence";
  s.doc = "emits count integers: start, start+step, ...";
  s.stateful = true;  // checkpoint: how many it emitted
  s.outputs = {{"out", "the integers, in order"}};
  s.params = {param_spec::integer("count", "how many integers to emit").def(10).at_least(0),
              param_spec::integer("start", "the first integer").def(0),
              param_spec::integer("step", "the difference between consecutive integers").def(1)};
  return {std::move(s), [](const node_init& init) { return std::make_unique<sequence>(init); }};
}

}  // namespace loom::actors
