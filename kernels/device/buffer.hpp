// kernels/device/buffer.hpp: GPU memory with RAII, and tensors that live on a GPU.
// - device_buffer owns one cudaMalloc'd block on one device (move-only; freed in its destructor).
// - device_storage is a loom::storage whose bytes are a device_buffer (device() >= 0), so a tensor can stay on
//   the GPU between two kernel actors on that GPU.
// - to_host(t) / to_device(t, device) copy a tensor across; each returns `t` itself when it is already there.
// The device types exist only in CUDA builds (LOOM_HAVE_CUDA); to_host exists in every build.
#pragma once

#include <cstddef>
#include <memory>

#include "runtime/tensor.hpp"

namespace loom::kernels {

#ifdef LOOM_HAVE_CUDA
class device_buffer {
 public:
  device_buffer() = default;
  // Allocates `bytes` on GPU `device`; throws std::runtime_error with the CUDA error (out of memory, ...).
  device_buffer(int device, std::size_t bytes);
  ~device_buffer();
  device_buffer(device_buffer&& other) noexcept;
  device_buffer& operator=(device_buffer&& other) noexcept;
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;

  void* get() const { return ptr_; }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  std::size_t size() const { return size_; }
  int device() const { return device_; }

  void upload(const void* host, std::size_t bytes, void* stream = nullptr);  // synchronous w.r.t. the host
  void download(void* host, std::size_t bytes, void* stream = nullptr) const;

 private:
  void* ptr_ = nullptr;
  std::size_t size_ = 0;
  int device_ = -1;
};

class device_storage final : public storage {
 public:
  explicit device_storage(device_buffer buf) : buf_(std::move(buf)) {}
  // A device pointer: never dereference it on the host.
  const std::byte* data() const override { return static_cast<const std::byte*>(buf_.get()); }
  std::size_t size() const override { return buf_.size(); }
  int device() const override { return buf_.device(); }
  const device_buffer& buffer() const { return buf_; }

 private:
  device_buffer buf_;
};

// A copy of host tensor `t` on GPU `device` (`t` itself when it is already there; a tensor on another GPU is
// copied through the host).
tensor to_device(const tensor& t, int device);
// A fresh copy of `t` on GPU `device`, wherever `t` is (a tensor on that GPU is copied device to device).
tensor copy_to_device(const tensor& t, int device);
// An uninitialised tensor of this shape on GPU `device`.
tensor empty_on_device(dtype type, std::vector<std::int64_t> shape, int device);
#endif

// A host copy of `t` (`t` itself when it is in host memory). What a sink that needs host data calls.
tensor to_host(const tensor& t);

}  // namespace loom::kernels
