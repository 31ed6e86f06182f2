// kernels/gemm/gemm.hpp: C = alpha * A * B + beta * C on row-major f32 matrices, with a CPU reference
// (gemm_cpu.cpp, blocked loops) and a CUDA path (gemm.cu, cuBLAS; LOOM_HAVE_CUDA only).
// The tensor-level `gemm` runs where it is told: on the CPU it takes host tensors (device tensors are copied
// to the host first) and returns a host tensor; on GPU `device` it uploads host inputs as needed and returns
// the product ON THE GPU (device storage), so the next kernel on that GPU takes it without a host round trip.
#pragma once

#include <cstdint>
#include <optional>

#include "runtime/tensor.hpp"

#ifdef LOOM_HAVE_CUDA
#include "kernels/gemm/gemm.cuh"
#endif

namespace loom::kernels {

// The CPU reference on raw row-major arrays: c[m x n] = alpha * a[m x k] * b[k x n] + beta * c.
// With beta == 0, c is not read (it may hold anything, NaNs included).
void gemm_cpu(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, const float* b, float beta,
              float* c);

struct gemm_options {
  float alpha = 1;
  float beta = 0;
  int device = -1;  // -1: the CPU path; >= 0: the CUDA path on that GPU (CUDA builds only)
#ifdef LOOM_HAVE_CUDA
  const blas_handle* blas = nullptr;  // for the CUDA path: a handle on `device` (nullptr: one made per call)
#endif
};

// alpha * a * b + beta * c (c absent: zeros). a: [m, k], b: [k, n], c: [m, n], all f32, 2-D. Throws
// std::invalid_argument naming the shapes or dtype when they do not fit.
tensor gemm(const tensor& a, const tensor& b, const gemm_options& opt, const std::optional<tensor>& c = std::nullopt);

}  // namespace loom::kernels
