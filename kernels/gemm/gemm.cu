// kernels/gemm/gemm.cu: the CUDA path of gemm with cuBLAS. cuBLAS is column-major; a row-major M is the
// column-major M^T, so row-major C = A B is computed as column-major C^T = B^T A^T: swap the operands and
// m with n, no transposes.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels/gemm/gemm.cuh"

namespace loom::kernels {
namespace {

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("gemm_cuda: ") + what + ": " + cublasGetStatusString(s));
}

int as_int(std::int64_t v) {
  if (v > INT_MAX) throw std::invalid_argument("gemm_cuda: a dimension does not fit cuBLAS's int");
  return static_cast<int>(v);
}

}  // namespace

blas_handle::blas_handle(int device) : device_(device) {
  if (cudaSetDevice(device) != cudaSuccess) throw std::runtime_error("blas_handle: cudaSetDevice failed");
  cublasHandle_t h = nullptr;
  check(cublasCreate(&h), "cublasCreate");
  handle_ = h;
}

blas_handle::~blas_handle() {
  if (handle_ != nullptr) cublasDestroy(static_cast<cublasHandle_t>(handle_));
}

blas_handle::blas_handle(blas_handle&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), device_(other.device_) {}

void gemm_cuda(const blas_handle& h, void* stream, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
               const float* a, const float* b, float beta, float* c) {
  if (cudaSetDevice(h.device()) != cudaSuccess) throw std::runtime_error("gemm_cuda: cudaSetDevice failed");
  auto handle = static_cast<cublasHandle_t>(h.get());
  check(cublasSetStream(handle, static_cast<cudaStream_t>(stream)), "cublasSetStream");
  if (m == 0 || n == 0) return;
  // Column-major view: C^T (n x m) = B^T (n x k) * A^T (k x m); leading dimensions are the row lengths.
  check(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, as_int(n), as_int(m), as_int(k), &alpha, b, as_int(n), a,
                    as_int(k), &beta, c, as_int(n)),
        "cublasSgemm");
}

}  // namespace loom::kernels
