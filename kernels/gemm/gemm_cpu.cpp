// kernels/gemm/gemm_cpu.cpp: the CPU path of gemm: OpenBLAS's cblas_sgemm on row-major arrays.
#include <cblas.h>
#include <fmt/format.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/gemm/gemm.hpp"

namespace loom::kernels {
namespace {

blasint as_blas_int(std::int64_t v, const char* name) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(fmt::format("gemm_cpu: {} = {} is outside BLAS's int range [0, {}]", name, v, INT_MAX));
  return static_cast<blasint>(v);
}

}  // namespace

void gemm_cpu(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, const float* b, float beta,
              float* c) {
  blasint bm = as_blas_int(m, "m"), bn = as_blas_int(n, "n"), bk = as_blas_int(k, "k");
  if (bm == 0 || bn == 0) return;
  if (bk == 0 || alpha == 0.0f) {  // nothing to multiply: C = beta * C (beta 0 writes zeros, never reads C)
    for (std::int64_t i = 0; i < m * n; ++i) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
    return;
  }
  // Row-major leading dimensions are the row lengths (at least 1, as BLAS requires).
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bm, bn, bk, alpha, a, bk, b, bn, beta, c, bn);
}

std::string cpu_blas_info() {
  return fmt::format("{} ({} threads)", openblas_get_config(), openblas_get_num_threads());
}

}  // namespace loom::kernels
