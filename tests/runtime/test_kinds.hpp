// tests/runtime/test_kinds.hpp: small kinds for executor tests: a source of ints and a node that throws
// (the collecting sink is tests/support/graph_runner.hpp's test.collect).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "loom/runtime/registry.hpp"
#include "tests/support/graph_runner.hpp"

namespace loom::test {

class ints final : public node {
 public:
  explicit ints(const node_init& i) : n_(i.params.get_int("count")) {}
  bool on_pull(context& ctx) override {
    for (auto b = ctx.budget(); b > 0 && next_ < n_ && !ctx.stopping(); --b) ctx.emit(value{next_++});
    return next_ < n_ && !ctx.stopping();
  }

 private:
  std::int64_t n_, next_ = 0;
};

// Forwards values; throws on the value `fail_on` while its shared countdown of failures is above zero.
class flaky final : public node {
 public:
  flaky(std::int64_t fail_on, std::shared_ptr<std::atomic<int>> failures)
      : fail_on_(fail_on), failures_(std::move(failures)) {}
  void on_message(context& ctx, std::size_t, const value& v) override {
    if (v.as_int() == fail_on_ && failures_->fetch_sub(1) > 0) throw std::runtime_error("boom");
    ctx.emit(v);
  }

 private:
  std::int64_t fail_on_;
  std::shared_ptr<std::atomic<int>> failures_;
};

inline void register_test_kinds(registry& r, std::shared_ptr<std::atomic<int>> failures) {
  using graph::param_spec;
  r.add({{"test.ints", "Emits count ints from 0.", {}, {{"out", "ints"}},
          {param_spec::integer("count", "how many").def(10)}, {}, {}},
         [](const node_init& i) { return std::make_unique<ints>(i); }});
  r.add({{"test.flaky", "Forwards; throws on one value.", {{"in", "ints"}}, {{"out", "ints"}},
          {param_spec::integer("fail_on", "the value to throw on").def(-1)}, {}, {}},
         [failures](const node_init& i) { return std::make_unique<flaky>(i.params.get_int("fail_on"), failures); }});
}

}  // namespace loom::test
