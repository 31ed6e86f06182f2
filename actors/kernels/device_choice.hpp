// actors/kernels/device_choice.hpp: internal to loom_actors. Where a kernel actor runs, from its `device`
// param (auto|cpu|cuda): a GPU when CUDA is compiled in and a device is found (auto, cuda), else the CPU
// (auto falls back; cuda is an error that says why there is no GPU).
#pragma once

#include <string>

namespace loom::actors {

struct device_choice {
  int device = -1;   // -1: the CPU path
  std::string why;   // for the CPU path: why not a GPU ("asked for cpu", "no CUDA device", ...)
  std::string name() const { return device < 0 ? "cpu" : "cuda:" + std::to_string(device); }
};

// `instance` spreads the replicas of a node over the GPUs found. Throws std::runtime_error for `cuda` with
// no GPU.
device_choice choose_device(const std::string& asked, int instance);

}  // namespace loom::actors
