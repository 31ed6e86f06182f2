// kernels/cuda/cuda_api.hpp: the table of CUDA paths that libloom_cuda.so (built only when nvcc is found)
// hands to the core. The core never links the CUDA runtime, cuBLAS or cuRAND: it opens the library with
// dlopen (kernels/cuda/cuda_library.hpp) the first time a kernel runs on a GPU, and calls through this table.
// C++17 and no loom headers but monte_carlo.hpp, so both nvcc and the core include it. Every entry throws
// std::runtime_error with the CUDA/cuBLAS/cuRAND error on failure (exceptions cross the library boundary:
// both sides are built by the same toolchain against the same libstdc++).
#pragma once

#include <cstddef>
#include <cstdint>

#include "loom/kernels/monte_carlo/monte_carlo.hpp"

namespace loom::kernels::cuda_api {

// Bumped whenever the table's layout or meaning changes; the loader refuses a library of another version.
constexpr int version = 1;

struct table {
  int version;
  const char* cuda_runtime;  // "CUDA runtime 13.0" (what the library was built against)

  // Whether the CUDA runtime can use GPU `device` (a driver too old for the runtime, a device hidden from
  // it...): true, or false with the reason written to why[0..why_size).
  bool (*usable)(int device, char* why, std::size_t why_size) noexcept;

  // Memory on GPU `device`. `stream` is a cudaStream_t (nullptr: the default stream); the copies to and from
  // the host are synchronous with respect to the host.
  void* (*allocate)(int device, std::size_t bytes);
  void (*release)(int device, void* p) noexcept;
  void (*upload)(int device, void* dst, const void* src, std::size_t bytes, void* stream);
  void (*download)(int device, void* dst, const void* src, std::size_t bytes, void* stream);
  void (*copy_on_device)(int device, void* dst, const void* src, std::size_t bytes);
  void (*synchronize)(int device);

  // cuBLAS: a handle bound to `device`; row-major C[m x n] = alpha A[m x k] B[k x n] + beta C on device
  // pointers, asynchronous on `stream`.
  void* (*blas_create)(int device);
  void (*blas_destroy)(void* handle) noexcept;
  void (*sgemm)(void* handle, int device, void* stream, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                const float* a, const float* b, float beta, float* c);

  // The Monte Carlo forecast (model in monte_carlo.hpp); `p` is already checked and `m` is its analytic moments.
  void (*forecast)(const forecast_params& p, const forecast_moments& m, int device, void* stream, forecast_result* out);
};

}  // namespace loom::kernels::cuda_api

// The one symbol libloom_cuda.so exports for the loader.
extern "C" const loom::kernels::cuda_api::table* loom_cuda_table();
