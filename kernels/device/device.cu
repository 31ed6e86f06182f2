// kernels/device/device.cu: the CUDA path of device discovery (compiled only with LOOM_CUDA).
#include <cuda_runtime.h>

#include <string>

#include "kernels/device/device.hpp"

namespace loom::kernels {

bool cuda_compiled() { return true; }

std::vector<device_info> find_devices(std::string* why_none) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    if (why_none) *why_none = std::string("CUDA runtime: ") + (err != cudaSuccess ? cudaGetErrorString(err) : "no device");
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return {};
  }
  std::vector<device_info> out;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    out.push_back(device_info{i, p.name, p.totalGlobalMem, p.major, p.minor});
  }
  return out;
}

}  // namespace loom::kernels
