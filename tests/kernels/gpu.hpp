// tests/kernels/gpu.hpp: the GPU a CUDA-path test runs on, or a visible skip when there is none.
#pragma once

#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "loom/kernels/device/device.hpp"

namespace loom::test {

// The first GPU, or nullopt after a doctest MESSAGE saying why the test is skipped.
inline std::optional<int> gpu_or_skip() {
  std::string why;
  auto devices = kernels::find_devices(&why);
  if (devices.empty()) {
    MESSAGE("SKIPPED (no GPU): " << why);
    return std::nullopt;
  }
  return devices.front().index;
}

}  // namespace loom::test
