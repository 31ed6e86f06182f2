// runtime/tensor.hpp: an n-dimensional array: dtype, shape, and a storage. The storage lives in host
// memory today; `device` leaves room for GPU storage (device >= 0) owned by the kernels layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace loom {

enum class dtype : std::uint8_t { f32, f64, f16, bf16, i8, i32, i64, u8 };
std::size_t dtype_size(dtype t);
const char* dtype_name(dtype t);
// Parses "f32", "float32", ... ; throws std::invalid_argument naming the valid names.
dtype parse_dtype(std::string_view name);

// A block of memory, on the host (device < 0) or on one GPU. Immutable once shared in a value.
class storage {
 public:
  virtual ~storage() = default;
  virtual const std::byte* data() const = 0;
  virtual std::size_t size() const = 0;
  virtual int device() const { return -1; }  // -1: host memory
};

// Host memory owned by a std::vector.
class host_storage final : public storage {
 public:
  explicit host_storage(std::vector<std::byte> bytes) : bytes_(std::move(bytes)) {}
  const std::byte* data() const override { return bytes_.data(); }
  std::size_t size() const override { return bytes_.size(); }

 private:
  std::vector<std::byte> bytes_;
};

class tensor {
 public:
  tensor(dtype t, std::vector<std::int64_t> shape, std::shared_ptr<const storage> data);
  // A zero-filled host tensor.
  static tensor zeros(dtype t, std::vector<std::int64_t> shape);
  // A host tensor holding a copy of `values` (f32 or f64 or i64 by T).
  template <class T>
  static tensor from(std::vector<std::int64_t> shape, const std::vector<T>& values);

  dtype type() const { return type_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t elements() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(elements()) * dtype_size(type_); }
  int device() const { return data_->device(); }
  const std::shared_ptr<const storage>& data() const { return data_; }
  // Host data viewed as T; throws when the tensor is on a device or T does not match the dtype size.
  template <class T>
  const T* host_data() const {
    if (device() >= 0) throw std::logic_error("tensor: host_data() of a device tensor");
    if (sizeof(T) != dtype_size(type_)) throw std::logic_error("tensor: host_data<T>() size mismatch");
    return reinterpret_cast<const T*>(data_->data());
  }
  friend bool operator==(const tensor& a, const tensor& b);

 private:
  dtype type_;
  std::vector<std::int64_t> shape_;
  std::shared_ptr<const storage> data_;
};

template <class T>
tensor tensor::from(std::vector<std::int64_t> shape, const std::vector<T>& values) {
  dtype t = sizeof(T) == 4 ? (std::is_floating_point_v<T> ? dtype::f32 : dtype::i32)
                           : (std::is_floating_point_v<T> ? dtype::f64 : dtype::i64);
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return tensor(t, std::move(shape), std::make_shared<host_storage>(std::move(bytes)));
}

}  // namespace loom
