// runtime/detached_context.hpp: a context for calling a node outside a run (`loom inspect` starting a node,
// `loom mcp` calling a tool node directly): no ports, no calls, never stopping.
#pragma once

#include <string>
#include <utility>

#include "loom/runtime/node.hpp"

namespace loom {

class detached_context final : public context {
 public:
  explicit detached_context(std::string name) : name_(std::move(name)) {}
  void emit(std::size_t, value) override {}
  bool connected(std::size_t) const override { return false; }
  std::size_t budget() const override { return 0; }
  void pause_for(std::chrono::nanoseconds) override {}
  std::string_view node_name() const override { return name_; }
  int instance() const override { return 0; }
  int replicas() const override { return 1; }
  bool stopping() const override { return false; }

 private:
  std::string name_;
};

}  // namespace loom
