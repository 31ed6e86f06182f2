// tests/runtime/test_kinds.hpp: small kinds for executor tests: a source of ints, a collector sink that
// records what it gets (shared with the test through its factory, not a global), a node that throws.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/registry.hpp"

namespace loom::test {

struct collected {
  std::mutex m;
  std::vector<value> values;
  std::vector<std::size_t> ports;
  std::atomic<int> finished{0};
  std::atomic<int> delay_us{0};  // slow sink: sleep per message
  std::vector<value> snapshot() {
    std::lock_guard lock(m);
    return values;
  }
};

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

class collect final : public node {
 public:
  explicit collect(std::shared_ptr<collected> c) : c_(std::move(c)) {}
  void on_message(context&, std::size_t port, const value& v) override {
    if (int d = c_->delay_us.load()) std::this_thread::sleep_for(std::chrono::microseconds(d));
    std::lock_guard lock(c_->m);
    c_->values.push_back(v);
    c_->ports.push_back(port);
  }
  void on_finish(context&) override { c_->finished.fetch_add(1); }

 private:
  std::shared_ptr<collected> c_;
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

inline void register_test_kinds(registry& r, std::shared_ptr<collected> sink,
                                std::shared_ptr<std::atomic<int>> failures) {
  using graph::param_spec;
  r.add({{"test.ints", "Emits count ints from 0.", {}, {{"out", "ints"}},
          {param_spec::integer("count", "how many").def(10)}, {}, {}},
         [](const node_init& i) { return std::make_unique<ints>(i); }});
  r.add({{"test.collect", "Records what it gets.", {{"in", "values"}, {"aux", "more values"}}, {}, {}, {}, {}},
         [sink](const node_init&) { return std::make_unique<collect>(sink); }});
  r.add({{"test.flaky", "Forwards; throws on one value.", {{"in", "ints"}}, {{"out", "ints"}},
          {param_spec::integer("fail_on", "the value to throw on").def(-1)}, {}, {}},
         [failures](const node_init& i) { return std::make_unique<flaky>(i.params.get_int("fail_on"), failures); }});
}

}  // namespace loom::test
