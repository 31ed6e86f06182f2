// actors/kernels/device_choice.hpp: internal to loom_actors. Where a kernel actor runs, from its `device`
// param (auto|cpu|cuda): a GPU when a device is found and the CUDA paths (libloom_cuda.so) load (auto, cuda),
// else the CPU (auto falls back; cuda is an error that says why there is no GPU). The CUDA library is opened
// here, the first time a kernel is placed on a GPU, and never otherwise.
#pragma once

#include <string>

namespace loom::actors {

struct device_choice {
  int device = -1;   // -1: the CPU path
  std::string why;   // for the CPU path: why not a GPU ("asked for cpu", "no CUDA device", ...)
  std::string name() const { return device < 0 ? "cpu" : "cuda:" + std::to_string(device); }
};

// `planned` is node_init::device: the GPU the plan gave this instance (it runs there), -1 when the plan put
// it on the CPU (auto runs the CPU path), or node_init::unplanned in a local run, where `instance` spreads
// the replicas of a node over the GPUs found. Throws std::runtime_error for `cuda` with no GPU or no CUDA
// library, and for a planned GPU this host does not have.
device_choice choose_device(const std::string& asked, int instance, int planned);

}  // namespace loom::actors
