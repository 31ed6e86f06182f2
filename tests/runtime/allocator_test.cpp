// tests/runtime/allocator_test.cpp: the `loom` program's malloc tuning steps aside for the user's own.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "loom/runtime/allocator.hpp"

namespace {
loom::allocator_tuning with(std::map<std::string, std::string> env) {
  return loom::choose_allocator_tuning([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}
}  // namespace

TEST_CASE("allocator tuning: applied by default, both thresholds") {
  auto t = with({{"PATH", "/usr/bin"}, {"GLIBC_TUNABLES", "glibc.pthread.rseq=0"}, {"MALLOC_TOP_PAD_", ""}});
  CHECK(t.apply);
  CHECK(t.mmap_threshold == (std::size_t{32} << 20));
  CHECK(t.trim_threshold == (std::size_t{64} << 20));
}

TEST_CASE("allocator tuning: the user's malloc settings win, and say which") {
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"}) {
    auto t = with({{name, "4096"}});
    CHECK_FALSE(t.apply);
    CHECK(t.why == std::string(name) + " is set");
  }
  auto t = with({{"GLIBC_TUNABLES", "glibc.malloc.arena_max=2"}});
  CHECK_FALSE(t.apply);
  CHECK(t.why == "GLIBC_TUNABLES names glibc.malloc");
  t = with({{"LOOM_MALLOC", "default"}});
  CHECK_FALSE(t.apply);
  CHECK(t.why == "LOOM_MALLOC=default");
  CHECK(with({{"LOOM_MALLOC", "tuned"}}).apply);
}
