// kernels/device/buffer.cpp: device buffers and host/device copies of tensors. The CUDA runtime is a C API,
// so this file is plain C++; its device half is compiled only with LOOM_HAVE_CUDA.
#include "kernels/device/buffer.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>
#include <vector>

#ifdef LOOM_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace loom::kernels {

#ifdef LOOM_HAVE_CUDA
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(fmt::format("{}: {}", what, cudaGetErrorString(e)));
}

// Makes `device` current for this scope and restores the previous one.
class device_scope {
 public:
  explicit device_scope(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (device != previous_) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~device_scope() { cudaSetDevice(previous_); }
  device_scope(const device_scope&) = delete;
  device_scope& operator=(const device_scope&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace

device_buffer::device_buffer(int device, std::size_t bytes) : size_(bytes), device_(device) {
  device_scope on(device);
  check(cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes), fmt::format("cudaMalloc of {} bytes on cuda:{}", bytes, device).c_str());
}

device_buffer::~device_buffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

device_buffer::device_buffer(device_buffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), size_(std::exchange(other.size_, 0)), device_(std::exchange(other.device_, -1)) {}

device_buffer& device_buffer::operator=(device_buffer&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    size_ = std::exchange(other.size_, 0);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

void device_buffer::upload(const void* host, std::size_t bytes, void* stream) {
  if (bytes > size_) throw std::logic_error("device_buffer::upload: more bytes than the buffer holds");
  if (bytes == 0) return;  // an empty tensor's host data may be null: nothing to copy, nothing to touch
  device_scope on(device_);
  auto s = static_cast<cudaStream_t>(stream);
  check(cudaMemcpyAsync(ptr_, host, bytes, cudaMemcpyHostToDevice, s), "cudaMemcpyAsync to device");
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

void device_buffer::download(void* host, std::size_t bytes, void* stream) const {
  if (bytes > size_) throw std::logic_error("device_buffer::download: more bytes than the buffer holds");
  if (bytes == 0) return;  // the host side of an empty tensor may be null
  device_scope on(device_);
  auto s = static_cast<cudaStream_t>(stream);
  check(cudaMemcpyAsync(host, ptr_, bytes, cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync to host");
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

tensor empty_on_device(dtype type, std::vector<std::int64_t> shape, int device) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  device_buffer buf(device, static_cast<std::size_t>(n) * dtype_size(type));
  return tensor(type, std::move(shape), std::make_shared<device_storage>(std::move(buf)));
}

tensor copy_to_device(const tensor& t, int device) {
  if (t.device() != device) {
    tensor host = to_host(t);
    device_buffer buf(device, host.nbytes());
    buf.upload(host.data()->data(), host.nbytes());
    return tensor(host.type(), host.shape(), std::make_shared<device_storage>(std::move(buf)));
  }
  device_scope on(device);
  device_buffer buf(device, t.nbytes());
  if (t.nbytes() > 0)
    check(cudaMemcpy(buf.get(), t.data()->data(), t.nbytes(), cudaMemcpyDeviceToDevice), "cudaMemcpy on device");
  return tensor(t.type(), t.shape(), std::make_shared<device_storage>(std::move(buf)));
}

tensor to_device(const tensor& t, int device) {
  if (t.device() == device) return t;
  return copy_to_device(t, device);
}

#endif

tensor to_host(const tensor& t) {
  if (t.device() < 0) return t;
#ifdef LOOM_HAVE_CUDA
  const auto* dev = dynamic_cast<const device_storage*>(t.data().get());
  if (dev == nullptr) throw std::logic_error("to_host: a device tensor whose storage is not a device_storage");
  std::vector<std::byte> bytes(t.nbytes());
  dev->buffer().download(bytes.data(), bytes.size());
  return tensor(t.type(), t.shape(), std::make_shared<host_storage>(std::move(bytes)));
#else
  throw std::logic_error(fmt::format("to_host: a tensor on cuda:{} in a build without CUDA", t.device()));
#endif
}

}  // namespace loom::kernels
