// kernels/device/device.cpp: device discovery shared by both builds; the CUDA query is in device.cu.
#include "kernels/device/device.hpp"

#include <fmt/format.h>

namespace loom::kernels {

#ifndef LOOM_HAVE_CUDA
bool cuda_compiled() { return false; }
std::vector<device_info> find_devices(std::string* why_none) {
  if (why_none) *why_none = "built without CUDA";
  return {};
}
#endif

std::string describe_devices() {
  std::string why;
  auto devices = find_devices(&why);
  if (devices.empty()) return fmt::format("none (CPU paths): {}", why);
  std::string out;
  for (const auto& d : devices)
    out += fmt::format("{}{}: {} ({:.1f} GiB, sm_{}{})", out.empty() ? "" : "; ", d.index, d.name,
                       d.memory / double(1ULL << 30), d.compute_major, d.compute_minor);
  return out;
}

}  // namespace loom::kernels
