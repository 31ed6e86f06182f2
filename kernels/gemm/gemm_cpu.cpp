// kernels/gemm/gemm_cpu.cpp: the CPU path of gemm: OpenBLAS's cblas_sgemm on row-major arrays.
//
// OpenBLAS is opened with dlopen on the first CPU gemm, not linked: at load it starts a thread per core, which
// costs every loom process start-up time (about 2 ms per thread here, much more on a busy host) whether or not
// it multiplies a matrix. cblas.h gives the prototypes; the library is Debian's libopenblas.so.0.
#include <cblas.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "loom/kernels/gemm/gemm.hpp"

namespace loom::kernels {
namespace {

constexpr const char* openblas_library = "libopenblas.so.0";

struct openblas {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&openblas_get_config) config = nullptr;
  decltype(&openblas_get_num_threads) threads = nullptr;
  std::string why;  // when sgemm is null
};

const openblas& blas() {
  static const openblas api = [] {
    openblas b;
    void* h = dlopen(openblas_library, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* err = dlerror();
      b.why = fmt::format("cannot open {} ({}); install Debian's libopenblas0", openblas_library, err ? err : "not found");
      return b;
    }
    b.sgemm = reinterpret_cast<decltype(&cblas_sgemm)>(dlsym(h, "cblas_sgemm"));
    b.config = reinterpret_cast<decltype(&openblas_get_config)>(dlsym(h, "openblas_get_config"));
    b.threads = reinterpret_cast<decltype(&openblas_get_num_threads)>(dlsym(h, "openblas_get_num_threads"));
    if (b.sgemm == nullptr) b.why = fmt::format("{} has no cblas_sgemm", openblas_library);
    return b;  // never closed
  }();
  return api;
}

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
  const auto& api = blas();
  if (api.sgemm == nullptr) throw std::runtime_error("gemm_cpu: OpenBLAS is not available: " + api.why);
  // Row-major leading dimensions are the row lengths (at least 1, as BLAS requires).
  api.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bm, bn, bk, alpha, a, bk, b, bn, beta, c, bn);
}

std::string cpu_blas_info() {
  const auto& api = blas();
  if (api.sgemm == nullptr) return "none: " + api.why;
  return fmt::format("{} ({} threads)", api.config ? api.config() : "OpenBLAS",
                     api.threads ? api.threads() : 0);
}

}  // namespace loom::kernels
