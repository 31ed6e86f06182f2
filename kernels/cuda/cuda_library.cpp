// kernels/cuda/cuda_library.cpp: dlopen of libloom_cuda.so on demand (see cuda_library.hpp).
#include "loom/kernels/cuda/cuda_library.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace loom::kernels {
namespace {

std::atomic<bool> requested{false};

#ifdef LOOM_HAVE_CUDA
std::vector<std::string> candidates() {
  if (const char* env = std::getenv("LOOM_CUDA_LIBRARY"); env != nullptr && *env != '\0') return {env};
  std::vector<std::string> out;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto dir = exe.parent_path();
    out.push_back((dir / cuda_library_name).string());
    out.push_back((dir.parent_path() / "lib" / cuda_library_name).string());
  }
  // A program that embeds loom (libloom.so): the library's own folder, where the package installs both.
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&candidates), &info) != 0 && info.dli_fname != nullptr) {
    auto lib = std::filesystem::path(info.dli_fname).parent_path() / cuda_library_name;
    if (std::find(out.begin(), out.end(), lib.string()) == out.end()) out.push_back(lib.string());
  }
  return out;
}
#endif

struct loaded {
  const cuda_api::table* table = nullptr;
  std::string why;
};

loaded load() {
#ifndef LOOM_HAVE_CUDA
  return {nullptr, "this loom was built without CUDA (LOOM_CUDA=OFF or no nvcc)"};
#else
  std::string tried;
  for (const auto& path : candidates()) {
    std::error_code ec;
    if (std::getenv("LOOM_CUDA_LIBRARY") == nullptr && !std::filesystem::exists(path, ec)) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    std::string why;
    if (const auto* t = open_cuda_library(path, &why)) return {t, ""};
    return {nullptr, why};
  }
  return {nullptr, fmt::format("{} not found (looked for {}; set LOOM_CUDA_LIBRARY to its path)", cuda_library_name,
                               tried.empty() ? "nothing: the executable's path is unknown" : tried)};
#endif
}

}  // namespace

const cuda_api::table* open_cuda_library(const std::string& path, std::string* why) {
  auto fail = [&](std::string msg) -> const cuda_api::table* {
    if (why) *why = std::move(msg);
    return nullptr;
  };
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* err = dlerror();
    return fail(fmt::format("cannot open {}: {}", path, err ? err : "unknown error"));
  }
  using entry = const cuda_api::table* (*)();
  auto get = reinterpret_cast<entry>(dlsym(h, "loom_cuda_table"));
  if (get == nullptr) {
    dlclose(h);
    return fail(fmt::format("{} is not a loom CUDA library: it has no loom_cuda_table", path));
  }
  const cuda_api::table* t = get();
  if (t == nullptr || t->version != cuda_api::version) {
    int v = t ? t->version : -1;
    dlclose(h);
    return fail(fmt::format("{} is a CUDA library of version {}, this loom needs version {}: rebuild it with this loom",
                            path, v, cuda_api::version));
  }
  return t;  // never closed: its functions may be running anywhere in the process until exit
}

const cuda_api::table* cuda_library(std::string* why) {
  static const loaded l = [] {
    requested.store(true);
    return load();
  }();
  if (l.table == nullptr && why) *why = l.why;
  return l.table;
}

const cuda_api::table& require_cuda_library(const char* what) {
  std::string why;
  const auto* t = cuda_library(&why);
  if (t == nullptr) throw std::runtime_error(fmt::format("{}: the CUDA paths are not available: {}", what, why));
  return *t;
}

bool cuda_usable(int device, std::string* why) {
  const auto* t = cuda_library(why);
  if (t == nullptr) return false;
  char buf[512] = {};
  if (t->usable(device, buf, sizeof buf)) return true;
  if (why) *why = buf;
  return false;
}

bool cuda_library_requested() { return requested.load(); }

}  // namespace loom::kernels
