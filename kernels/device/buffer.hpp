// kernels/device/buffer.hpp: GPU memory with RAII, and tensors that live on a GPU.
// - device_buffer owns one block of memory on one GPU (move-only; freed in its destructor).
// - device_storage is a loom::storage whose bytes are a device_buffer (device() >= 0), so a tensor can stay on
//   the GPU between two kernel actors on that GPU.
// - to_host(t) / to_device(t, device) copy a tensor across; each returns `t` itself when it is already there.
// Declared in every build; the device half goes through libloom_cuda.so (opened on first use), so in a build
// or on a host without it a device_buffer cannot be made (std::runtime_error saying why). to_host of a host
// tensor never touches CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "loom/runtime/tensor.hpp"

namespace loom::kernels {

class device_buffer {
 public:
  device_buffer() = default;
  // Allocates `bytes` on GPU `device`; throws std::runtime_error with the CUDA error (out of memory, no CUDA
  // library, ...).
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
// Waits for all work queued on GPU `device`.
void synchronize_device(int device);

// A host copy of `t` (`t` itself when it is in host memory). What a sink that needs host data calls.
tensor to_host(const tensor& t);

}  // namespace loom::kernels
