// embed/version.cpp: loom::version(), the library's own version (loom/version.hpp).
#include "loom/version.hpp"

namespace loom {
const char* version() noexcept { return LOOM_VERSION_STRING; }
}  // namespace loom
