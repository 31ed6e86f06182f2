// cli/progress.hpp: the live per-node counts `loom run` shows on a terminal for runs longer than a second.
#pragma once

#include "loom/runtime/run_report.hpp"

namespace loom::cli {

class progress {
 public:
  // Shows progress only when stderr is a terminal and `enabled`.
  explicit progress(bool enabled);
  void update(const local::run_report& r);
  // Erases the progress line, if one was drawn.
  void clear();

 private:
  bool enabled_;
  bool drawn_ = false;
};

}  // namespace loom::cli
