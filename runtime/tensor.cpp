// runtime/tensor.cpp: dtypes, shapes and host tensors.
#include "loom/runtime/tensor.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

namespace loom {
namespace {

struct dtype_info {
  dtype type;
  const char* name;
  const char* alias;
  std::size_t size;
};

constexpr dtype_info dtypes[] = {
    {dtype::f32, "f32", "float32", 4}, {dtype::f64, "f64", "float64", 8}, {dtype::f16, "f16", "float16", 2},
    {dtype::bf16, "bf16", "bfloat16", 2}, {dtype::i8, "i8", "int8", 1},   {dtype::i32, "i32", "int32", 4},
    {dtype::i64, "i64", "int64", 8},      {dtype::u8, "u8", "uint8", 1},
};

const dtype_info& info(dtype t) {
  for (const auto& d : dtypes)
    if (d.type == t) return d;
  throw std::logic_error("tensor: unknown dtype");
}

}  // namespace

std::size_t dtype_size(dtype t) { return info(t).size; }
const char* dtype_name(dtype t) { return info(t).name; }

dtype parse_dtype(std::string_view name) {
  std::string all;
  for (const auto& d : dtypes) {
    if (name == d.name || name == d.alias) return d.type;
    all += all.empty() ? "" : ", ";
    all += d.name;
  }
  throw std::invalid_argument(fmt::format("unknown dtype '{}'; expected one of: {}", name, all));
}

namespace {

// The number of elements of a shape, checked: no negative dimension, and the byte size (elements x the dtype's
// size) fits in 64 bits. A 0 dimension anywhere makes 0 elements, however large the others are.
std::int64_t checked_elements(dtype t, const std::vector<std::int64_t>& shape) {
  for (auto d : shape)
    if (d < 0) throw std::invalid_argument(fmt::format("tensor: negative dimension {}", d));
  for (auto d : shape)
    if (d == 0) return 0;
  std::int64_t n = 1, bytes = 0;
  for (auto d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw std::invalid_argument(fmt::format("tensor: shape [{}] has more elements than fit in 64 bits", fmt::join(shape, ",")));
  if (__builtin_mul_overflow(n, static_cast<std::int64_t>(dtype_size(t)), &bytes))
    throw std::invalid_argument(
        fmt::format("tensor: shape [{}] of {} needs more bytes than fit in 64 bits", fmt::join(shape, ","), dtype_name(t)));
  return n;
}

}  // namespace

tensor::tensor(dtype t, std::vector<std::int64_t> shape, std::shared_ptr<const storage> data)
    : type_(t), shape_(std::move(shape)), data_(std::move(data)) {
  checked_elements(type_, shape_);
  if (!data_) throw std::invalid_argument("tensor: no storage");
  if (data_->size() < nbytes())
    throw std::invalid_argument(
        fmt::format("tensor: storage of {} bytes is smaller than {} elements of {} ({} bytes)", data_->size(),
                    elements(), dtype_name(type_), nbytes()));
}

tensor tensor::zeros(dtype t, std::vector<std::int64_t> shape) {
  std::vector<std::byte> bytes(static_cast<std::size_t>(checked_elements(t, shape)) * dtype_size(t));
  return tensor(t, std::move(shape), std::make_shared<host_storage>(std::move(bytes)));
}

std::int64_t tensor::elements() const {
  for (auto d : shape_)
    if (d == 0) return 0;  // before multiplying the others: their product may not fit (checked_elements)
  std::int64_t n = 1;
  for (auto d : shape_) n *= d;
  return n;
}

bool operator==(const tensor& a, const tensor& b) {
  if (a.type_ != b.type_ || a.shape_ != b.shape_) return false;
  if (a.data_ == b.data_) return true;
  if (a.device() >= 0 || b.device() >= 0) return false;  // device data is compared by the kernels layer
  // An empty tensor's storage may have no buffer at all (data() null): memcmp must not see it, even for 0 bytes.
  const std::size_t n = a.nbytes();
  return n == 0 || std::memcmp(a.data_->data(), b.data_->data(), n) == 0;
}

}  // namespace loom
