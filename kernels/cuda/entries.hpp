// kernels/cuda/entries.hpp: internal to libloom_cuda.so. The functions behind the table of cuda_api.hpp, one
// group per file: memory (cuda/plugin.cpp), cuBLAS gemm (gemm/gemm.cu), the forecast (monte_carlo/monte_carlo.cu).
#pragma once

#include <cstddef>
#include <cstdint>

#include "loom/kernels/monte_carlo/monte_carlo.hpp"

namespace loom::kernels::cuda_impl {

void* blas_create(int device);
void blas_destroy(void* handle) noexcept;
void sgemm(void* handle, int device, void* stream, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, const float* b, float beta, float* c);

void forecast(const forecast_params& p, const forecast_moments& m, int device, void* stream, forecast_result* out);

}  // namespace loom::kernels::cuda_impl
