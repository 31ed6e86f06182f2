// kernels/gemm/gemm.cpp: the tensor-level gemm: checks shapes and dtypes, then runs the CPU path (OpenBLAS) or
// the CUDA path (cuBLAS in libloom_cuda.so, through its table) on the device the caller chose.
#include <fmt/format.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "loom/kernels/cuda/cuda_library.hpp"
#include "loom/kernels/device/buffer.hpp"
#include "loom/kernels/gemm/gemm.hpp"

namespace loom::kernels {
namespace {

std::string shape_str(const tensor& t) { return fmt::format("[{}]", fmt::join(t.shape(), ", ")); }

void require_matrix(const tensor& t, const char* name) {
  if (t.type() != dtype::f32)
    throw std::invalid_argument(fmt::format("gemm: {} must be f32, found {}", name, dtype_name(t.type())));
  if (t.shape().size() != 2)
    throw std::invalid_argument(fmt::format("gemm: {} must be a matrix (2-D), found shape {}", name, shape_str(t)));
}

tensor gemm_on_cpu(const tensor& a0, const tensor& b0, const gemm_options& opt, const std::optional<tensor>& c0,
                   std::int64_t m, std::int64_t n, std::int64_t k) {
  tensor a = to_host(a0), b = to_host(b0);
  std::vector<std::byte> out(static_cast<std::size_t>(m * n) * sizeof(float));
  float beta = c0 ? opt.beta : 0.0f;
  if (c0 && beta != 0.0f) {
    tensor c = to_host(*c0);
    if (!out.empty()) std::memcpy(out.data(), c.data()->data(), out.size());  // an m or n of 0: no buffers
  }
  gemm_cpu(m, n, k, opt.alpha, a.host_data<float>(), b.host_data<float>(), beta, reinterpret_cast<float*>(out.data()));
  return tensor(dtype::f32, {m, n}, std::make_shared<host_storage>(std::move(out)));
}

tensor gemm_on_gpu(const tensor& a0, const tensor& b0, const gemm_options& opt, const std::optional<tensor>& c0,
                   std::int64_t m, std::int64_t n, std::int64_t k) {
  tensor a = to_device(a0, opt.device), b = to_device(b0, opt.device);
  float beta = c0 ? opt.beta : 0.0f;
  // The result is a fresh buffer: the input C (shared, immutable) is copied when beta reads it.
  tensor out = beta != 0.0f ? copy_to_device(*c0, opt.device) : empty_on_device(dtype::f32, {m, n}, opt.device);
  auto ptr = [](const tensor& t) { return reinterpret_cast<const float*>(t.data()->data()); };
  std::optional<blas_handle> own;
  const blas_handle* h = opt.blas;
  if (h == nullptr || h->device() != opt.device) h = &own.emplace(opt.device);
  gemm_cuda(*h, nullptr, m, n, k, opt.alpha, ptr(a), ptr(b), beta, const_cast<float*>(ptr(out)));
  return out;
}

}  // namespace

blas_handle::blas_handle(int device) : device_(device) {
  handle_ = require_cuda_library("blas_handle").blas_create(device);
}

blas_handle::~blas_handle() {
  if (handle_ != nullptr) cuda_library()->blas_destroy(handle_);  // a handle means the library is loaded
}

blas_handle::blas_handle(blas_handle&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), device_(other.device_) {}

void gemm_cuda(const blas_handle& h, void* stream, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
               const float* a, const float* b, float beta, float* c) {
  require_cuda_library("gemm_cuda").sgemm(h.get(), h.device(), stream, m, n, k, alpha, a, b, beta, c);
}

tensor gemm(const tensor& a, const tensor& b, const gemm_options& opt, const std::optional<tensor>& c) {
  require_matrix(a, "A");
  require_matrix(b, "B");
  std::int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  if (b.shape()[0] != k)
    throw std::invalid_argument(
        fmt::format("gemm: A {} and B {} do not fit: A's columns must equal B's rows", shape_str(a), shape_str(b)));
  if (c) {
    require_matrix(*c, "C");
    if (c->shape()[0] != m || c->shape()[1] != n)
      throw std::invalid_argument(fmt::format("gemm: C {} must be [{}, {}]", shape_str(*c), m, n));
  }
  if (opt.device < 0) return gemm_on_cpu(a, b, opt, c, m, n, k);
  return gemm_on_gpu(a, b, opt, c, m, n, k);
}

}  // namespace loom::kernels
