// runtime/plugin.cpp: loads a user's kind library with dlopen and calls its loom_register().
#include <dlfcn.h>
#include <fmt/format.h>

#include <stdexcept>

#include "loom/runtime/registry.hpp"

namespace loom {

void load_plugin(registry& r, const std::string& path) {
  // RTLD_NOW: an unresolved symbol is reported here, naming the library, not at the first call.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) throw std::runtime_error(fmt::format("cannot load plugin {}: {}", path, dlerror()));
  // The library stays loaded for the life of the process: its kinds' code must outlive every node.
  using register_fn = void (*)(registry&);
  auto fn = reinterpret_cast<register_fn>(dlsym(handle, "loom_register"));
  if (!fn)
    throw std::runtime_error(
        fmt::format("plugin {} has no `extern \"C\" void loom_register(loom::registry&)`", path));
  fn(r);
}

}  // namespace loom
