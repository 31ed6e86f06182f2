// kernels/gemm/gemm.hpp: C = alpha * A * B + beta * C on row-major f32 matrices. The CPU path is OpenBLAS's
// cblas_sgemm (gemm_cpu.cpp); the CUDA path is cuBLAS in libloom_cuda.so (gemm.cu), opened on first use.
// The tensor-level `gemm` runs where it is told: on the CPU it takes host tensors (device tensors are copied
// to the host first) and returns a host tensor; on GPU `device` it uploads host inputs as needed and returns
// the product ON THE GPU (device storage), so the next kernel on that GPU takes it without a host round trip.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "loom/runtime/tensor.hpp"

namespace loom::kernels {

// The CPU path on raw row-major arrays: c[m x n] = alpha * a[m x k] * b[k x n] + beta * c, by OpenBLAS
// (multi-threaded over the cores). With beta == 0, c is not read (it may hold anything, NaNs included).
// Throws std::invalid_argument when a dimension is negative or does not fit BLAS's int.
void gemm_cpu(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, const float* b, float beta,
              float* c);

// The BLAS behind gemm_cpu, as it describes itself ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell MAX_THREADS=64",
// and the number of threads it uses).
std::string cpu_blas_info();

// A cuBLAS handle bound to one GPU (RAII; move-only). Creating one costs about a millisecond (and opens
// libloom_cuda.so on first use): a kernel actor keeps one for its lifetime.
class blas_handle {
 public:
  explicit blas_handle(int device);  // throws std::runtime_error when there is no CUDA library or GPU
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

struct gemm_options {
  float alpha = 1;
  float beta = 0;
  int device = -1;                    // -1: the CPU path; >= 0: the CUDA path on that GPU
  const blas_handle* blas = nullptr;  // for the CUDA path: a handle on `device` (nullptr: one made per call)
};

// alpha * a * b + beta * c (c absent: zeros). a: [m, k], b: [k, n], c: [m, n], all f32, 2-D. Throws
// std::invalid_argument naming the shapes or dtype when they do not fit.
tensor gemm(const tensor& a, const tensor& b, const gemm_options& opt, const std::optional<tensor>& c = std::nullopt);

}  // namespace loom::kernels
