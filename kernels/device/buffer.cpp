// kernels/device/buffer.cpp: device buffers and host/device copies of tensors, through the table of
// libloom_cuda.so (kernels/cuda/cuda_library.hpp), so this file needs no CUDA header and no CUDA library.
#include "loom/kernels/device/buffer.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>
#include <vector>

#include "loom/kernels/cuda/cuda_library.hpp"

namespace loom::kernels {

device_buffer::device_buffer(int device, std::size_t bytes) : size_(bytes), device_(device) {
  ptr_ = require_cuda_library("device_buffer").allocate(device, bytes);
}

device_buffer::~device_buffer() {
  if (ptr_ != nullptr) cuda_library()->release(device_, ptr_);  // a non-null ptr_ means the library is loaded
}

device_buffer::device_buffer(device_buffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), size_(std::exchange(other.size_, 0)), device_(std::exchange(other.device_, -1)) {}

device_buffer& device_buffer::operator=(device_buffer&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) cuda_library()->release(device_, ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    size_ = std::exchange(other.size_, 0);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

void device_buffer::upload(const void* host, std::size_t bytes, void* stream) {
  if (bytes > size_) throw std::logic_error("device_buffer::upload: more bytes than the buffer holds");
  if (bytes == 0) return;  // an empty tensor's host data may be null: nothing to copy, nothing to touch
  require_cuda_library("device_buffer::upload").upload(device_, ptr_, host, bytes, stream);
}

void device_buffer::download(void* host, std::size_t bytes, void* stream) const {
  if (bytes > size_) throw std::logic_error("device_buffer::download: more bytes than the buffer holds");
  if (bytes == 0) return;  // the host side of an empty tensor may be null
  require_cuda_library("device_buffer::download").download(device_, host, ptr_, bytes, stream);
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
  device_buffer buf(device, t.nbytes());
  if (t.nbytes() > 0)
    require_cuda_library("copy_to_device").copy_on_device(device, buf.get(), t.data()->data(), t.nbytes());
  return tensor(t.type(), t.shape(), std::make_shared<device_storage>(std::move(buf)));
}

tensor to_device(const tensor& t, int device) {
  if (t.device() == device) return t;
  return copy_to_device(t, device);
}

void synchronize_device(int device) { require_cuda_library("synchronize_device").synchronize(device); }

tensor to_host(const tensor& t) {
  if (t.device() < 0) return t;
  const auto* dev = dynamic_cast<const device_storage*>(t.data().get());
  if (dev == nullptr) throw std::logic_error("to_host: a device tensor whose storage is not a device_storage");
  std::vector<std::byte> bytes(t.nbytes());
  dev->buffer().download(bytes.data(), bytes.size());
  return tensor(t.type(), t.shape(), std::make_shared<host_storage>(std::move(bytes)));
}

}  // namespace loom::kernels
