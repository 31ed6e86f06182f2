// actors/kernels/device_choice.cpp: the device a kernel actor runs on (see device_choice.hpp).
#include "actors/kernels/device_choice.hpp"

#include <stdexcept>

#include "kernels/device/device.hpp"

namespace loom::actors {

device_choice choose_device(const std::string& asked, int instance, int planned) {
  if (asked == "cpu") return {-1, "the node asked for the cpu"};
  if (planned == -1 && asked != "cuda") return {-1, "the plan placed it on the CPU (no GPU free)"};
  std::string why;
  auto devices = kernels::find_devices(&why);
  if (devices.empty()) {
    if (asked == "cuda") throw std::runtime_error("device: cuda was asked for but there is no GPU: " + why);
    return {-1, why};
  }
  if (planned >= 0) {  // the GPU the plan gave this instance
    for (const auto& d : devices)
      if (d.index == planned) return {d.index, ""};
    throw std::runtime_error("the plan placed this instance on GPU " + std::to_string(planned) + ", but this host has " +
                             std::to_string(devices.size()));
  }
  return {devices[static_cast<std::size_t>(instance) % devices.size()].index, ""};
}

}  // namespace loom::actors
