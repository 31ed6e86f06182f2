// sink.count: counts the values it receives; with `expect` set, a different count fails the run at finish
// ("expected N messages, got M").
//   inputs:  in (any)
//   params:  expect (integer, optional, >= 0)
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>

#include "loom/actors/kinds.hpp"

namespace loom::actors {
namespace {

class count final : public node {
 public:
  explicit count(const node_init& init) {
    if (init.params.has("expect")) expect_ = init.params.get_int("expect");
    if (init.restored.is_int()) seen_ = init.restored.as_int();  // a restart: what was counted so far
  }

  void on_message(context& ctx, std::size_t port, const value& v) override { ctx.checkpoint(value(++seen_)); }
  bool handles_runs() const override { return true; }
  void on_run(context& ctx, std::size_t port, std::span<const value> values) override {
    seen_ += static_cast<std::int64_t>(values.size());
    ctx.checkpoint(value(seen_));
  }

  void on_finish(context& ctx) override {
    if (expect_ && *expect_ != seen_)
      throw std::runtime_error(fmt::format("expected {} messages, got {}", *expect_, seen_));
  }

 private:
  std::optional<std::int64_t> expect_;
  std::int64_t seen_ = 0;
};

}  // namespace

kind_def count_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "sink.count";
  s.doc = "counts the values it receives; fails at finish when expect is set and differs";
  s.inputs = {{"in", "any values"}};
  s.stateful = true;  // checkpoint: the count so far
  s.params = {param_spec::integer("expect", "the count the run must deliver (optional)").at_least(0)};
  return {std::move(s), [](const node_init& init) { return std::make_unique<count>(init); }};
}

}  // namespace loom::actors
