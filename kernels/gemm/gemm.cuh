// kernels/gemm/gemm.cuh: the CUDA launcher of gemm (gemm.cu), on raw device pointers. C++17, no loom headers,
// so both gemm.cu (nvcc) and gemm.cpp include it. Only in CUDA builds.
#pragma once

#include <cstdint>

namespace loom::kernels {

// A cuBLAS handle bound to one device (RAII; move-only). Creating one costs about a millisecond: a kernel
// actor keeps one for its lifetime.
class blas_handle {
 public:
  explicit blas_handle(int device);
  ~blas_handle();
  blas_handle(blas_handle&& other) noexcept;
  blas_handle& operator=(blas_handle&&) = delete;
  blas_handle(const blas_handle&) = delete;
  blas_handle& operator=(const blas_handle&) = delete;
  void* get() const { return handle_; }  // a cublasHandle_t
  int device() const { return device_; }

 private:
  void* handle_ = nullptr;
  int device_ = -1;
};

// C[m x n] = alpha * A[m x k] * B[k x n] + beta * C, all row-major f32 device pointers on h.device(), run on
// `stream` (a cudaStream_t; nullptr: the default stream). Asynchronous; throws std::runtime_error on a
// cuBLAS error.
void gemm_cuda(const blas_handle& h, void* stream, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
               const float* a, const float* b, float beta, float* c);

}  // namespace loom::kernels
