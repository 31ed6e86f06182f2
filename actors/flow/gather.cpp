// flow.gather: collects `count` values into one list and emits it, then starts the next list. On finish a
// partial list is emitted if it holds anything (so a short run still delivers what it gathered). Values
// from parallel branches arrive in any order; `sort_by` puts the list in a stable order instead.
//   inputs:  in (any)
//   outputs: out (list of `count` values; the last one may be shorter, never empty)
//   params:  count (integer, required, >= 1), sort_by (string, default "": arrival order; else sort by this
//            field of map values, as text; values without it go last, in arrival order)
#include <algorithm>
#include <memory>

#include "loom/actors/kinds.hpp"
#include "loom/runtime/json.hpp"

namespace loom::actors {
namespace {

class gather final : public node {
 public:
  explicit gather(const params& p)
      : count_(static_cast<std::size_t>(p.get_int("count"))), sort_by_(p.get_string("sort_by")) {}

  void on_message(context& ctx, std::size_t port, const value& v) override {
    held_.push_back(v);
    if (held_.size() >= count_) emit_held(ctx);
  }

  void on_finish(context& ctx) override {
    if (!held_.empty()) emit_held(ctx);
  }

 private:
  void emit_held(context& ctx) {
    if (!sort_by_.empty())
      std::stable_sort(held_.begin(), held_.end(), [&](const value& a, const value& b) {
        const value* ka = a.find(sort_by_);
        const value* kb = b.find(sort_by_);
        if (!ka || !kb) return ka != nullptr && kb == nullptr;
        return to_text(*ka) < to_text(*kb);
      });
    ctx.emit(0, value(std::move(held_)));
    ctx.checkpoint(value{});  // nothing held: a restart replays only the values after this
    held_ = value_list();
  }

  std::size_t count_;
  std::string sort_by_;
  value_list held_;
};

}  // namespace

kind_def gather_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "flow.gather";
  s.doc = "collects count values into one list";
  s.stateful = true;  // what it holds comes back by replay after a restart
  s.inputs = {{"in", "any values"}};
  s.outputs = {{"out", "one list per count values received"}};
  s.params = {param_spec::integer("count", "values to collect per list").require().at_least(1),
              param_spec::string("sort_by", "sort each list by this field of its map values; empty: arrival order")
                  .def("")};
  return {std::move(s), [](const node_init& init) { return std::make_unique<gather>(init.params); }};
}

}  // namespace loom::actors
