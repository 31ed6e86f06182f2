// kernels/cuda/cuda_library.hpp: opens libloom_cuda.so (the CUDA paths: CUDA runtime, cuBLAS, cuRAND) on
// demand. Nothing in the core links CUDA; the library is opened the first time a kernel runs on a GPU, so a
// graph without a GPU kernel, or a host without a GPU, never maps any of it.
//
// Where it is looked for, first found wins:
//   1. $LOOM_CUDA_LIBRARY (a path; when set, nothing else is tried),
//   2. next to the executable (<dir of /proc/self/exe>/libloom_cuda.so),
//   3. <dir of the executable>/../lib/libloom_cuda.so (the build tree: build/bin and build/lib).
#pragma once

#include <string>

#include "loom/kernels/cuda/cuda_api.hpp"

namespace loom::kernels {

// The file name of the library.
inline constexpr const char* cuda_library_name = "libloom_cuda.so";

// Opens the library at `path` (not cached) and checks its table's version. nullptr with `why` filled
// ("cannot open PATH: <dlerror>", "PATH has no loom_cuda_table", "PATH is version N, this loom needs M").
const cuda_api::table* open_cuda_library(const std::string& path, std::string* why);

// The table, opened once per process from the places above; nullptr with `why` when it cannot be (a build
// without CUDA, the library missing, ...). Thread-safe.
const cuda_api::table* cuda_library(std::string* why = nullptr);

// cuda_library() or std::runtime_error("<what>: the CUDA paths are not available: <why>").
const cuda_api::table& require_cuda_library(const char* what);

// Whether the CUDA paths can run on GPU `device`: the library opens and its CUDA runtime can use the device
// (the driver is recent enough, ...). False with `why` otherwise.
bool cuda_usable(int device, std::string* why);

// Whether cuda_library() has been asked for (and so may have mapped the CUDA libraries) in this process.
bool cuda_library_requested();

}  // namespace loom::kernels
