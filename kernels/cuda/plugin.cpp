// kernels/cuda/plugin.cpp: libloom_cuda.so's table (cuda_api.hpp) and its memory entries on the CUDA runtime.
// Built only when nvcc is found; the core opens this library with dlopen when a kernel runs on a GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "loom/kernels/cuda/cuda_api.hpp"
#include "loom/kernels/cuda/entries.hpp"

namespace loom::kernels::cuda_impl {
namespace {

void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw std::runtime_error(what + ": " + cudaGetErrorString(e));
}

// Makes `device` current for this scope and restores the previous one.
class device_scope {
 public:
  explicit device_scope(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (device != previous_) check(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  }
  ~device_scope() { cudaSetDevice(previous_); }
  device_scope(const device_scope&) = delete;
  device_scope& operator=(const device_scope&) = delete;

 private:
  int previous_ = 0;
};

bool usable(int device, char* why, std::size_t why_size) noexcept {
  auto say = [&](const std::string& s) {
    if (why != nullptr && why_size > 0) {
      std::size_t n = std::min(s.size(), why_size - 1);
      s.copy(why, n);
      why[n] = '\0';
    }
    return false;
  };
  try {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear it, so later calls start clean
      return say(std::string("CUDA runtime: ") + cudaGetErrorString(e));
    }
    if (device < 0 || device >= count)
      return say("CUDA runtime: GPU " + std::to_string(device) + " is not one of its " + std::to_string(count));
    return true;
  } catch (...) {
    return say("CUDA runtime: out of memory while checking the device");
  }
}

void* allocate(int device, std::size_t bytes) {
  device_scope on(device);
  void* p = nullptr;
  check(cudaMalloc(&p, bytes == 0 ? 1 : bytes),
        "cudaMalloc of " + std::to_string(bytes) + " bytes on cuda:" + std::to_string(device));
  return p;
}

void release(int device, void* p) noexcept {
  if (p == nullptr) return;
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) previous = device;
  if (previous != device) cudaSetDevice(device);
  cudaFree(p);
  if (previous != device) cudaSetDevice(previous);
}

void upload(int device, void* dst, const void* src, std::size_t bytes, void* stream) {
  device_scope on(device);
  auto s = static_cast<cudaStream_t>(stream);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s), "cudaMemcpyAsync to device");
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

void download(int device, void* dst, const void* src, std::size_t bytes, void* stream) {
  device_scope on(device);
  auto s = static_cast<cudaStream_t>(stream);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync to host");
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

void copy_on_device(int device, void* dst, const void* src, std::size_t bytes) {
  device_scope on(device);
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy on device");
}

void synchronize(int device) {
  device_scope on(device);
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

const std::string runtime_name = "CUDA runtime " + std::to_string(CUDART_VERSION / 1000) + "." +
                                 std::to_string(CUDART_VERSION % 1000 / 10);

const cuda_api::table the_table{
    cuda_api::version,
    runtime_name.c_str(),
    &usable,
    &allocate,
    &release,
    &upload,
    &download,
    &copy_on_device,
    &synchronize,
    &blas_create,
    &blas_destroy,
    &sgemm,
    &forecast,
};

}  // namespace
}  // namespace loom::kernels::cuda_impl

extern "C" __attribute__((visibility("default"))) const loom::kernels::cuda_api::table* loom_cuda_table() {
  return &loom::kernels::cuda_impl::the_table;
}
