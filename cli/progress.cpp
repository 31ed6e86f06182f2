// cli/progress.cpp: one progress line on stderr, redrawn in place.
#include "cli/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace loom::cli {

progress::progress(bool enabled) : enabled_(enabled && isatty(STDERR_FILENO) == 1) {}

void progress::update(const local::run_report& r) {
  if (!enabled_ || r.seconds < 1.0) return;
  auto line = r.progress_line();
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void progress::clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace loom::cli
