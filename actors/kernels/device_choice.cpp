// actors/kernels/device_choice.cpp: the device a kernel actor runs on (see device_choice.hpp).
#include "actors/kernels/device_choice.hpp"

#include <stdexcept>

#include "kernels/device/device.hpp"

namespace loom::actors {

device_choice choose_device(const std::string& asked, int instance) {
  if (asked == "cpu") return {-1, "the node asked for the cpu"};
  std::string why;
  auto devices = kernels::find_devices(&why);
  if (devices.empty()) {
    if (asked == "cuda") throw std::runtime_error("device: cuda was asked for but there is no GPU: " + why);
    return {-1, why};
  }
  return {devices[static_cast<std::size_t>(instance) % devices.size()].index, ""};
}

}  // namespace loom::actors
