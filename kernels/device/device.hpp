// kernels/device/device.hpp: which GPUs this process can use. Built with CUDA (LOOM_CUDA), it asks the
// CUDA runtime; built without, or on a machine with no GPU or driver, it finds none and every kernel
// runs its CPU path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace loom::kernels {

struct device_info {
  int index = 0;
  std::string name;
  std::uint64_t memory = 0;  // bytes
  int compute_major = 0, compute_minor = 0;
};

// True when this build has the CUDA paths compiled in.
bool cuda_compiled();
// The GPUs found, empty when none. `why_none` says why there are none (no CUDA build, no driver, ...).
std::vector<device_info> find_devices(std::string* why_none = nullptr);
// "1 x NVIDIA H100 80GB HBM3 (79.1 GiB)" or "none (CPU paths): <why>".
std::string describe_devices();

}  // namespace loom::kernels
