// tests/support/graph_runner.hpp: runs graphs in the real runtime for tests. A registry with the built-in
// kinds plus `test.collect` (a sink that records what it gets, shared with the test through its factory, not
// a global), a CAF system, and run() for a built graph or YAML text. Tests add their own kinds to `kinds`.
#pragma once

#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "loom/actors/builtins.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/registry.hpp"

namespace loom::test {

struct collected {
  std::mutex m;
  std::vector<value> values;
  std::vector<std::size_t> ports;
  std::atomic<int> finished{0};
  std::atomic<int> delay_us{0};  // a slow sink: sleep per message
  std::vector<value> snapshot() {
    std::lock_guard lock(m);
    return values;
  }
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

class graph_runner {
 public:
  std::shared_ptr<collected> sink = std::make_shared<collected>();
  registry kinds;

  explicit graph_runner(std::size_t threads = 2) {
    actors::register_builtins(kinds);
    graph::kind_spec c{"test.collect", "Records what it gets.", {{"in", "values"}, {"aux", "more values"}}, {}, {}, {}, {}};
    kinds.add({c, [s = sink](const node_init&) { return std::make_unique<collect>(s); }});
    cfg_.set("scheduler.max-threads", threads);
    system_ = std::make_unique<caf::actor_system>(cfg_);
  }

  // Validates (failing the test on errors), fills defaults, runs to the end.
  local::run_report run(graph::graph g, local::run_options o = {}) {
    graph::diagnostics d;
    graph::validate(g, kinds, d);
    INFO(d.str());
    REQUIRE_FALSE(d.has_errors());
    graph::apply_defaults(g, kinds);
    return local::run_graph(*system_, g, kinds, o);
  }

  local::run_report run_yaml(const std::string& yaml, const std::string& file = "test.yaml") {
    graph::diagnostics d;
    auto g = graph::load_graph_text(yaml, file, d);
    INFO(d.str());
    REQUIRE(g.has_value());
    return run(*g);
  }

 private:
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> system_;
};

}  // namespace loom::test
