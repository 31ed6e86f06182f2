// tests/actors/harness.hpp: runs one node of a registered kind outside any runtime. A fake context records
// every emit per output port, the pause and wake-up requests, and checks that a source never emits past its
// budget; `running` builds the node from the kind's factory with params given as config, defaults filled
// from the kind's spec, and its output port count from spec.output_ports(), as the runtime does.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "loom/actors/builtins.hpp"
#include "loom/runtime/params.hpp"
#include "loom/runtime/registry.hpp"

namespace loom::test {

class fake_context final : public context {
 public:
  explicit fake_context(std::size_t outputs) : out(outputs), wired(outputs, true) {}

  void emit(std::size_t port, value v) override {
    if (port >= out.size())
      throw std::logic_error("emit on port " + std::to_string(port) + " of " + std::to_string(out.size()));
    ++emitted_since_pull;
    out[port].push_back(std::move(v));
  }
  bool connected(std::size_t port) const override { return port < wired.size() && wired[port]; }
  std::size_t budget() const override { return budget_per_pull; }
  void pause_for(std::chrono::nanoseconds d) override { pauses.push_back(d); }
  void wake_after(std::chrono::nanoseconds d) override { wakes.push_back(d); }
  std::string_view node_name() const override { return "under_test"; }
  int instance() const override { return 0; }
  int replicas() const override { return 1; }
  bool stopping() const override { return stop; }
  void checkpoint(value state) override { checkpointed = std::move(state); }

  std::vector<std::vector<value>> out;  // every emit, per output port
  std::vector<bool> wired;              // connected(port); all true unless a test says otherwise
  std::size_t budget_per_pull = std::numeric_limits<std::size_t>::max();
  std::size_t emitted_since_pull = 0;
  std::vector<std::chrono::nanoseconds> pauses;
  std::vector<std::chrono::nanoseconds> wakes;  // every ctx.wake_after()
  bool stop = false;
  value checkpointed;  // the last ctx.checkpoint() (null if none)
};

// The built-in kinds, registered once per test binary.
inline const registry& builtins() {
  static const registry r = [] {
    registry reg;
    actors::register_builtins(reg);
    return reg;
  }();
  return r;
}

// One node of `kind` (from `reg`) with its fake context.
class running {
 public:
  running(std::string_view kind, graph::config_map given, const registry& reg = builtins())
      : def_(find(reg, kind)),
        init_(make_init(*def_, std::move(given))),
        ctx(init_.outputs),
        node(def_->make(init_)) {}

  void start() { node->on_start(ctx); }
  void send(value v, std::size_t port = 0) { node->on_message(ctx, port, v); }
  void finish() { node->on_finish(ctx); }
  // Replaces the node with a fresh one from the factory given `restored`, as the runtime restarts a failed
  // node (the old one is destroyed first); start() it next.
  void restart(value restored) {
    node.reset();
    init_.restored = std::move(restored);
    ++init_.attempt;
    node = def_->make(init_);
  }
  // One pull; checks the node kept to its budget.
  bool pull() {
    ctx.emitted_since_pull = 0;
    bool more = node->on_pull(ctx);
    CHECK(ctx.emitted_since_pull <= ctx.budget_per_pull);
    return more;
  }
  // start, pull until done (at most max_pulls), finish: what the source emitted on port 0.
  const std::vector<value>& drain(std::size_t max_pulls = 1'000'000) {
    start();
    std::size_t pulls = 0;
    while (pull())
      if (++pulls >= max_pulls) throw std::runtime_error("source did not finish");
    finish();
    return out();
  }
  std::vector<value>& out(std::size_t port = 0) { return ctx.out.at(port); }

 private:
  static const kind_def* find(const registry& reg, std::string_view kind) {
    const kind_def* def = reg.find(kind);
    if (def == nullptr) throw std::invalid_argument("no kind " + std::string(kind));
    return def;
  }
  static node_init make_init(const kind_def& def, graph::config_map given) {
    for (const auto& p : def.spec.params)
      if (p.default_value && graph::config(given).find(p.name) == nullptr)
        given.emplace_back(p.name, *p.default_value);
    graph::config as_written(std::move(given));
    node_init init;
    init.name = "under_test";
    init.outputs = def.spec.output_ports(as_written).size();
    init.params = params(to_value(as_written).as_map());
    return init;
  }

  const kind_def* def_;
  node_init init_;

 public:
  fake_context ctx;
  std::unique_ptr<loom::node> node;
};

// Integers 0..n-1 as values.
inline std::vector<value> ints(std::int64_t from, std::int64_t to, std::int64_t step = 1) {
  std::vector<value> v;
  for (std::int64_t i = from; step > 0 ? i < to : i > to; i += step) v.emplace_back(i);
  return v;
}

}  // namespace loom::test

namespace loom::test {

// A fresh directory under the system temp dir for this test binary's files; removed at exit.
class temp_dir {
 public:
  temp_dir()
      : path_(std::filesystem::temp_directory_path() / ("loom_actors_test." + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  // Path of `name` inside the directory, as a string.
  std::string file(std::string_view name) const { return (path_ / name).string(); }
  // Writes `text` to `name` and returns its path.
  std::string write(std::string_view name, std::string_view text) const {
    std::ofstream f(path_ / name, std::ios::binary);
    f << text;
    return file(name);
  }
  static std::string read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }

 private:
  std::filesystem::path path_;
};

}  // namespace loom::test
