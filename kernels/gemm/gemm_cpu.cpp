// kernels/gemm/gemm_cpu.cpp: the CPU reference of gemm: blocked loops in i-p-j order, so the innermost loop
// runs along rows of B and C (contiguous, vectorised by the compiler) and each block stays in cache.
#include <algorithm>

#include "kernels/gemm/gemm.hpp"

namespace loom::kernels {

void gemm_cpu(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, const float* b, float beta,
              float* c) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) c[i * n + j] = beta == 0.0f ? 0.0f : beta * c[i * n + j];
  if (alpha == 0.0f) return;
  constexpr std::int64_t bi = 64, bp = 128, bj = 256;
  for (std::int64_t i0 = 0; i0 < m; i0 += bi)
    for (std::int64_t p0 = 0; p0 < k; p0 += bp)
      for (std::int64_t j0 = 0; j0 < n; j0 += bj) {
        std::int64_t i1 = std::min(i0 + bi, m), p1 = std::min(p0 + bp, k), j1 = std::min(j0 + bj, n);
        for (std::int64_t i = i0; i < i1; ++i) {
          float* crow = c + i * n;
          for (std::int64_t p = p0; p < p1; ++p) {
            float s = alpha * a[i * k + p];
            const float* brow = b + p * n;
            for (std::int64_t j = j0; j < j1; ++j) crow[j] += s * brow[j];
          }
        }
      }
}

}  // namespace loom::kernels
