// actors/kernels/device_choice.cpp: the device a kernel actor runs on (see device_choice.hpp).
#include "loom/actors/kernels/device_choice.hpp"

#include <stdexcept>

#include "loom/kernels/cuda/cuda_library.hpp"
#include "loom/kernels/device/device.hpp"

namespace loom::actors {

device_choice choose_device(const std::string& asked, int instance, int planned) {
  if (asked == "cpu") return {-1, "the node asked for the cpu"};
  if (planned == -1 && asked != "cuda") return {-1, "the plan placed it on the CPU (no GPU free)"};
  std::string why;
  auto devices = kernels::find_devices(&why);
  if (devices.empty()) {
    if (asked == "cuda") throw std::runtime_error("device: cuda was asked for but there is no GPU: " + why);
    return {-1, why};
  }
  int chosen = devices[static_cast<std::size_t>(instance) % devices.size()].index;
  if (planned >= 0) {  // the GPU the plan gave this instance
    chosen = -1;
    for (const auto& d : devices)
      if (d.index == planned) chosen = d.index;
    if (chosen < 0)
      throw std::runtime_error("the plan placed this instance on GPU " + std::to_string(planned) +
                               ", but this host has " + std::to_string(devices.size()));
  }
  // Only now, with a GPU to run on, are the CUDA paths (libloom_cuda.so: CUDA runtime, cuBLAS, cuRAND) loaded.
  if (!kernels::cuda_usable(chosen, &why)) {
    why = "GPU " + std::to_string(chosen) + " was found but the CUDA paths cannot run on it: " + why;
    if (asked == "cuda") throw std::runtime_error("device: cuda was asked for: " + why);
    return {-1, why};
  }
  return {chosen, ""};
}

}  // namespace loom::actors
