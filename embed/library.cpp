// embed/library.cpp: libloom.so's own translation unit. The library is the archives of loom_lib's
// WHOLE_ARCHIVE list (embed/CMakeLists.txt); this file only gives the target a source of its own.
#include "loom/version.hpp"
