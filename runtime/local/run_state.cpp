// runtime/local/run_state.cpp: counters and stop hooks of one run.
#include "loom/runtime/local/run_state.hpp"

namespace loom::local {

run_state::run_state(std::size_t instances, std::size_t edges)
    : counters_(std::make_unique<node_counters[]>(instances)),
      edges_(std::make_unique<edge_counters[]>(edges)),
      hooks_(instances) {}

void run_state::stop() {
  if (stopping_.exchange(true)) return;
  std::lock_guard lock(m_);
  for (auto& h : hooks_)
    if (h) h();
}

void run_state::set_stop_hook(std::uint32_t instance, std::function<void()> hook) {
  std::lock_guard lock(m_);
  hooks_.at(instance) = std::move(hook);
  if (stopping_.load()) hooks_[instance]();  // stopped before the hook was set
}

void run_state::clear_stop_hook(std::uint32_t instance) {
  std::lock_guard lock(m_);
  hooks_.at(instance) = nullptr;
}

}  // namespace loom::local
