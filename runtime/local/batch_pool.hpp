// runtime/local/batch_pool.hpp: emptied batch vectors that a node instance reuses for the batches it sends.
// A stage receives a batch, consumes it in place, and sends values on: the consumed vector (its values
// destroyed, its capacity kept) becomes its next outgoing batch, so a chain of stages allocates a batch
// only at its source and frees it only at its sink. One per node instance, used by its inbox and outbox
// on the actor's own thread: no lock. At most `max_spare` vectors of at most `max_values` values each wait
// here, so a node keeps at most 4 x 64 KiB of spare storage (a larger batch, from an edge with a large
// capacity, is freed as before).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "loom/runtime/value.hpp"

namespace loom::local {

class batch_pool {
 public:
  static constexpr std::size_t max_spare = 4;
  static constexpr std::size_t max_values = 4096;

  // A consumed batch: its values are destroyed here, its storage kept (when there is room).
  void give(std::vector<value>&& v) {
    if (spare_.size() >= max_spare || v.capacity() == 0 || v.capacity() > max_values) return;
    v.clear();
    spare_.push_back(std::move(v));
  }
  // An empty vector with room for at least `want` values.
  std::vector<value> take(std::size_t want) {
    std::vector<value> v;
    if (!spare_.empty()) {
      v = std::move(spare_.back());
      spare_.pop_back();
    }
    if (v.capacity() < want) v.reserve(want);
    return v;
  }

 private:
  std::vector<std::vector<value>> spare_;
};

}  // namespace loom::local
