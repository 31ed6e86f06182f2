// flow.gather: collects `count` values into one list and emits it, then starts the next list. On finish a
// partial list is emitted if it holds anything (so a short run still delivers what it gathered).
//   inputs:  in (any)
//   outputs: out (list of `count` values; the last one may be shorter, never empty)
//   params:  count (integer, required, >= 1)
#include <memory>

#include "actors/kinds.hpp"

namespace loom::actors {
namespace {

class gather final : public node {
 public:
  explicit gather(const params& p) : count_(static_cast<std::size_t>(p.get_int("count"))) {}

  void on_message(context& ctx, std::size_t port, const value& v) override {
    held_.push_back(v);
    if (held_.size() >= count_) emit_held(ctx);
  }

  void on_finish(context& ctx) override {
    if (!held_.empty()) emit_held(ctx);
  }

 private:
  void emit_held(context& ctx) {
    ctx.emit(0, value(std::move(held_)));
    held_ = value_list();
  }

  std::size_t count_;
  value_list held_;
};

}  // namespace

kind_def gather_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "flow.gather";
  s.doc = "collects count values into one list";
  s.inputs = {{"in", "any values"}};
  s.outputs = {{"out", "one list per count values received"}};
  s.params = {param_spec::integer("count", "values to collect per list").require().at_least(1)};
  return {std::move(s), [](const node_init& init) { return std::make_unique<gather>(init.params); }};
}

}  // namespace loom::actors
