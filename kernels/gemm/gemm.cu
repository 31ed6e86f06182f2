// kernels/gemm/gemm.cu: the CUDA path of gemm with cuBLAS (part of libloom_cuda.so). cuBLAS is column-major;
// a row-major M is the column-major M^T, so row-major C = A B is computed as column-major C^T = B^T A^T: swap
// the operands and m with n, no transposes.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "loom/kernels/cuda/entries.hpp"

namespace loom::kernels::cuda_impl {
namespace {

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("gemm_cuda: ") + what + ": " + cublasGetStatusString(s));
}

void set_device(int device, const char* who) {
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(who) + ": cudaSetDevice(" + std::to_string(device) + "): " + cudaGetErrorString(e));
}

int as_int(std::int64_t v) {
  if (v > INT_MAX) throw std::invalid_argument("gemm_cuda: a dimension does not fit cuBLAS's int");
  return static_cast<int>(v);
}

}  // namespace

void* blas_create(int device) {
  set_device(device, "blas_handle");
  cublasHandle_t h = nullptr;
  check(cublasCreate(&h), "cublasCreate");
  return h;
}

void blas_destroy(void* handle) noexcept {
  if (handle != nullptr) cublasDestroy(static_cast<cublasHandle_t>(handle));
}

void sgemm(void* handle, int device, void* stream, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, const float* b, float beta, float* c) {
  set_device(device, "gemm_cuda");
  auto h = static_cast<cublasHandle_t>(handle);
  check(cublasSetStream(h, static_cast<cudaStream_t>(stream)), "cublasSetStream");
  if (m == 0 || n == 0) return;
  // Column-major view: C^T (n x m) = B^T (n x k) * A^T (k x m); leading dimensions are the row lengths.
  int ldb = as_int(n), lda = as_int(k > 0 ? k : 1), ldc = as_int(n);
  check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, as_int(n), as_int(m), as_int(k), &alpha, b, ldb, a, lda, &beta, c, ldc),
        "cublasSgemm");
}

}  // namespace loom::kernels::cuda_impl
