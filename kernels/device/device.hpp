// kernels/device/device.hpp: which GPUs this process can use. Discovery asks the NVIDIA driver
// (libcuda.so.1, opened with dlopen) and never the CUDA runtime, so on a host without a GPU or driver it
// costs a failed dlopen; the CUDA runtime, cuBLAS and cuRAND come in only with libloom_cuda.so, when a kernel
// runs on a GPU (kernels/cuda/cuda_library.hpp). A build without CUDA finds none and every kernel runs its
// CPU path.
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

// True when this build has the CUDA paths (libloom_cuda.so was built with it).
bool cuda_compiled();
// The GPUs found, empty when none. `why_none` says why there are none (no CUDA build, no driver, ...).
// Probed once per process (the first call); later calls return the same answer.
std::vector<device_info> find_devices(std::string* why_none = nullptr);
// "0: NVIDIA H100 80GB HBM3 (79.1 GiB, sm_90)", "none (CPU paths): <why>", or, when nothing in this process
// has asked for a GPU yet, "not probed (no kernel asked for a GPU)": describing never probes by itself.
std::string describe_devices();

}  // namespace loom::kernels
