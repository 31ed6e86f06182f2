// runtime/allocator.cpp: the choice (a pure function of the environment) and the two mallopt calls.
#include "loom/runtime/allocator.hpp"

#include <cstdlib>
#include <string_view>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace loom {

allocator_tuning choose_allocator_tuning(const std::function<const char*(const char*)>& getenv) {
  allocator_tuning t;
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"})
    if (const char* v = getenv(name); v && *v) {
      t.why = std::string(name) + " is set";
      return t;
    }
  if (const char* v = getenv("GLIBC_TUNABLES"); v && std::string_view(v).find("glibc.malloc.") != std::string_view::npos) {
    t.why = "GLIBC_TUNABLES names glibc.malloc";
    return t;
  }
  if (const char* v = getenv("LOOM_MALLOC"); v && std::string_view(v) == "default") {
    t.why = "LOOM_MALLOC=default";
    return t;
  }
  t.apply = true;
  return t;
}

allocator_tuning tune_allocator() {
  auto t = choose_allocator_tuning([](const char* name) { return std::getenv(name); });
#if defined(__GLIBC__)
  // Both together: setting either one turns off glibc's dynamic thresholds, and either alone measured
  // slower than the defaults (docs/cluster.md).
  if (t.apply) {
    t.apply = mallopt(M_MMAP_THRESHOLD, static_cast<int>(t.mmap_threshold)) == 1 &&
              mallopt(M_TRIM_THRESHOLD, static_cast<int>(t.trim_threshold)) == 1;
    if (!t.apply) t.why = "mallopt refused";
  }
#else
  if (t.apply) {
    t.apply = false;
    t.why = "not glibc";
  }
#endif
  return t;
}

}  // namespace loom
