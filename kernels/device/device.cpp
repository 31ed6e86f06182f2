// kernels/device/device.cpp: device discovery through the NVIDIA driver API, opened with dlopen (see
// device.hpp). The few driver entry points used are declared here, so no CUDA header is needed.
#include "loom/kernels/device/device.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <atomic>
#include <cstddef>

namespace loom::kernels {
namespace {

std::atomic<bool> probed{false};

struct probe_result {
  std::vector<device_info> devices;
  std::string why;
};

#ifdef LOOM_HAVE_CUDA
// The driver API (cuda.h) in the few pieces used: results are ints, 0 is success.
using cu_init_t = int (*)(unsigned);
using cu_count_t = int (*)(int*);
using cu_get_t = int (*)(int*, int);
using cu_name_t = int (*)(char*, int, int);
using cu_mem_t = int (*)(std::size_t*, int);
using cu_attr_t = int (*)(int*, int, int);
using cu_error_t = int (*)(int, const char**);
constexpr int attr_compute_major = 75, attr_compute_minor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_*

probe_result probe() {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = dlerror();
    return {{}, fmt::format("no NVIDIA driver ({})", err ? err : "libcuda.so.1 not found")};
  }
  auto sym = [&](const char* name) { return dlsym(lib, name); };
  auto init = reinterpret_cast<cu_init_t>(sym("cuInit"));
  auto count = reinterpret_cast<cu_count_t>(sym("cuDeviceGetCount"));
  auto get = reinterpret_cast<cu_get_t>(sym("cuDeviceGet"));
  auto name = reinterpret_cast<cu_name_t>(sym("cuDeviceGetName"));
  auto mem = reinterpret_cast<cu_mem_t>(sym("cuDeviceTotalMem_v2"));
  auto attr = reinterpret_cast<cu_attr_t>(sym("cuDeviceGetAttribute"));
  auto error = reinterpret_cast<cu_error_t>(sym("cuGetErrorString"));
  if (!init || !count || !get || !name || !mem || !attr) {
    dlclose(lib);
    return {{}, "the NVIDIA driver (libcuda.so.1) lacks the device query entry points"};
  }
  auto message = [&](int code) {
    const char* s = nullptr;
    if (error == nullptr || error(code, &s) != 0 || s == nullptr) return fmt::format("error {}", code);
    return std::string(s);
  };
  int n = 0;
  if (int e = init(0); e != 0) {
    std::string why = "NVIDIA driver: cuInit: " + message(e);
    dlclose(lib);
    return {{}, why};
  }
  if (int e = count(&n); e != 0 || n == 0) {
    std::string why = "NVIDIA driver: " + (e != 0 ? message(e) : std::string("no device"));
    return {{}, why};
  }
  probe_result out;
  for (int i = 0; i < n; ++i) {
    int dev = 0;
    if (get(&dev, i) != 0) continue;
    char buf[256] = {};
    device_info d;
    d.index = i;
    if (name(buf, sizeof buf, dev) == 0) d.name = buf;
    std::size_t bytes = 0;
    if (mem(&bytes, dev) == 0) d.memory = bytes;
    attr(&d.compute_major, attr_compute_major, dev);
    attr(&d.compute_minor, attr_compute_minor, dev);
    out.devices.push_back(std::move(d));
  }
  // The driver stays loaded: the CUDA runtime of libloom_cuda.so will use it.
  return out;
}
#endif

const probe_result& result() {
  static const probe_result r = [] {
    probed.store(true);
#ifdef LOOM_HAVE_CUDA
    return probe();
#else
    return probe_result{{}, "built without CUDA"};
#endif
  }();
  return r;
}

}  // namespace

bool cuda_compiled() {
#ifdef LOOM_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::vector<device_info> find_devices(std::string* why_none) {
  const auto& r = result();
  if (r.devices.empty() && why_none) *why_none = r.why;
  return r.devices;
}

std::string describe_devices() {
  if (cuda_compiled() && !probed.load()) return "not probed (no kernel asked for a GPU)";
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
