// runtime/allocator.hpp: how a loom process asks glibc's malloc to keep the memory it frees. A run moves
// its values in batches of up to a link's window (65536 values of 16 bytes: 1 MiB vectors), allocated on
// one thread and freed on another. With glibc's defaults such a vector is mmap'ed and unmapped, or taken
// from an arena whose top is given back to the kernel (MADV_DONTNEED) as soon as it is free, so every batch
// pays page faults and the kernel's zeroing of fresh pages: a fifth of a cross-host hop's CPU in a profile
// (docs/cluster.md, "Memory the allocator keeps"). The `loom` program (not the library: a program that
// embeds loom owns its own allocator) calls tune_allocator() first thing.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace loom {

struct allocator_tuning {
  bool apply = false;
  std::string why;  // when not applied: the environment variable that chose glibc's behaviour instead
  std::size_t mmap_threshold = std::size_t{32} << 20;  // blocks below this come from an arena, not mmap
  std::size_t trim_threshold = std::size_t{64} << 20;  // an arena gives its free top back past this
};

// What tune_allocator() does with this environment: nothing when the user set malloc's own knobs
// (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_, GLIBC_TUNABLES naming glibc.malloc) or
// LOOM_MALLOC=default; else both thresholds above.
allocator_tuning choose_allocator_tuning(const std::function<const char*(const char*)>& getenv);

// Applies choose_allocator_tuning(::getenv) with mallopt (glibc only; elsewhere nothing). Returns it.
allocator_tuning tune_allocator();

}  // namespace loom
