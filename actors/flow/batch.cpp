// flow.batch: groups consecutive values into lists of `size`; on finish emits the last, partial list.
//   inputs:  in (any)
//   outputs: out (list of `size` values; the last one may be shorter, never empty)
//   params:  size (integer, default 16, >= 1)
#include <memory>

#include "loom/actors/kinds.hpp"

namespace loom::actors {
namespace {

class batch final : public node {
 public:
  explicit batch(const params& p) : size_(static_cast<std::size_t>(p.get_int("size"))) {
    held_.reserve(size_);
  }

  void on_message(context& ctx, std::size_t port, const value& v) override {
    held_.push_back(v);
    if (held_.size() >= size_) flush(ctx);
  }

  void on_finish(context& ctx) override {
    if (!held_.empty()) flush(ctx);
  }

 private:
  void flush(context& ctx) {
    ctx.emit(0, value(std::move(held_)));
    ctx.checkpoint(value{});  // nothing held: a restart replays only the values after this
    held_ = value_list();
    held_.reserve(size_);
  }

  std::size_t size_;
  value_list held_;
};

}  // namespace

kind_def batch_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "flow.batch";
  s.doc = "groups consecutive values into lists of size values";
  s.stateful = true;  // what it holds comes back by replay after a restart
  s.inputs = {{"in", "any values"}};
  s.outputs = {{"out", "lists of size values; the last may be shorter"}};
  s.params = {param_spec::integer("size", "values per list").def(16).at_least(1)};
  return {std::move(s), [](const node_init& init) { return std::make_unique<batch>(init.params); }};
}

}  // namespace loom::actors
