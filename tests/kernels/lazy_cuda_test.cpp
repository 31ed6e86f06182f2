// tests/kernels/lazy_cuda_test.cpp: the CUDA paths cost nothing until a kernel runs on a GPU. `loom` does not
// link the CUDA runtime, cuBLAS or cuRAND (nor OpenBLAS); running kernels on the CPU maps none of the CUDA
// libraries (nor libloom_cuda.so), and OpenBLAS only once a CPU gemm runs; the CUDA library, where it is
// built, opens on demand with its table; a missing or wrong library is a clear error.
// Its own binary, so that no other test has opened the library first: the cases run in this file's order.
#include <dlfcn.h>
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "loom/kernels/cuda/cuda_library.hpp"
#include "loom/kernels/device/buffer.hpp"
#include "loom/kernels/device/device.hpp"
#include "loom/kernels/monte_carlo/monte_carlo.hpp"
#include "tests/actors/harness.hpp"
#include "tests/tools/tool_call.hpp"

using namespace loom;

namespace {

// The CUDA libraries (and loom's) mapped into this process, one per line; empty when none.
std::string cuda_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::string line, found;
  for (const char* lib : {"libcudart", "libcublas", "libcurand", "libloom_cuda", "libcuda.so"})
    if (found.find(lib) == std::string::npos) {
      maps.clear();
      maps.seekg(0);
      while (std::getline(maps, line))
        if (line.find(lib) != std::string::npos) {
          found += line.substr(line.find('/') == std::string::npos ? 0 : line.find('/')) + "\n";
          break;
        }
    }
  return found;
}

bool mapped(const char* lib) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(lib) != std::string::npos) return true;
  return false;
}

std::string run(const std::string& command) {
  std::string out;
  std::array<char, 4096> buf{};
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
  pclose(p);
  return out;
}

value pair_map() {
  return value{value_map{{"a", tensor::from<float>({1, 2}, {1, 2})}, {"b", tensor::from<float>({2, 1}, {3, 4})}}};
}

}  // namespace

TEST_CASE("the loom binary links no CUDA library" * doctest::timeout(30)) {
  std::string loom = std::string(LOOM_BINARY_DIR) + "/bin/loom";
  REQUIRE(std::filesystem::exists(loom));
  std::string deps = run("ldd '" + loom + "' 2>&1");
  INFO("ldd " << loom << ":\n" << deps);
  CHECK(deps.find("libc.so") != std::string::npos);  // ldd did run
  for (const char* lib : {"libcudart", "libcublas", "libcurand", "libcuda.so", "libloom_cuda", "libopenblas"}) {
    CAPTURE(lib);
    CHECK(deps.find(lib) == std::string::npos);
  }
}

TEST_CASE("kernels on the CPU map no CUDA library into the process" * doctest::timeout(60)) {
  INFO("mapped: " << cuda_mappings());
  CHECK(cuda_mappings().empty());  // nothing at start
  CHECK_FALSE(mapped("libopenblas"));
  // Asked for the cpu: not even the driver is asked.
  test::running g("kernel.gemm", {{"device", "cpu"}});
  g.start();
  CHECK_FALSE(mapped("libopenblas"));  // not before the first product
  g.send(pair_map());
  CHECK(g.out()[0].as_tensor().host_data<float>()[0] == 11);
  CHECK(mapped("libopenblas"));
  test::running mc("tool.monte_carlo", {{"device", "cpu"}});
  test::call_tool(mc, "tool.monte_carlo", {{"samples", 50000}});
  CHECK(cuda_mappings().empty());
  CHECK_FALSE(kernels::cuda_library_requested());
  CHECK(kernels::describe_devices() == (kernels::cuda_compiled() ? "not probed (no kernel asked for a GPU)"
                                                                  : "none (CPU paths): built without CUDA"));
  // On auto, a host without a GPU runs the CPU paths having asked the driver only.
  if (kernels::find_devices().empty()) {
    test::running a("kernel.gemm", {});
    a.start();
    a.send(pair_map());
    CHECK(a.out()[0].as_tensor().device() == -1);
    CHECK_FALSE(kernels::cuda_library_requested());
    INFO("mapped: " << cuda_mappings());
    CHECK(cuda_mappings().find("libcudart") == std::string::npos);
    CHECK(cuda_mappings().find("libloom_cuda") == std::string::npos);
    CHECK(kernels::describe_devices().rfind("none (CPU paths): ", 0) == 0);
  } else {
    MESSAGE("a GPU is present: the auto case runs on it, nothing to check here");
  }
}

TEST_CASE("the CUDA library opens on demand where it is built, with its table" * doctest::timeout(60)) {
  std::string why;
  const auto* t = kernels::cuda_library(&why);
  CHECK(kernels::cuda_library_requested());
  if (!kernels::cuda_compiled()) {
    CHECK(t == nullptr);
    CHECK(why == "this loom was built without CUDA (LOOM_CUDA=OFF or no nvcc)");
    CHECK_THROWS_WITH_AS(kernels::device_buffer(0, 16),
                         "device_buffer: the CUDA paths are not available: this loom was built without CUDA "
                         "(LOOM_CUDA=OFF or no nvcc)",
                         std::runtime_error);
    return;
  }
  INFO("why: " << why);
  REQUIRE(t != nullptr);
  CHECK(t->version == kernels::cuda_api::version);
  CHECK(std::string(t->cuda_runtime).rfind("CUDA runtime ", 0) == 0);
  for (const void* f : {reinterpret_cast<const void*>(t->usable), reinterpret_cast<const void*>(t->allocate), reinterpret_cast<const void*>(t->release),
                        reinterpret_cast<const void*>(t->upload), reinterpret_cast<const void*>(t->download),
                        reinterpret_cast<const void*>(t->copy_on_device), reinterpret_cast<const void*>(t->synchronize),
                        reinterpret_cast<const void*>(t->blas_create), reinterpret_cast<const void*>(t->blas_destroy),
                        reinterpret_cast<const void*>(t->sgemm), reinterpret_cast<const void*>(t->forecast)})
    CHECK(f != nullptr);
  CHECK(cuda_mappings().find("libloom_cuda.so") != std::string::npos);
  CHECK(cuda_mappings().find("libcudart") != std::string::npos);
  if (kernels::find_devices().empty()) {
    // No GPU: the CUDA runtime says why it cannot use one, and its errors come back as exceptions.
    CHECK_FALSE(kernels::cuda_usable(0, &why));
    CHECK(why.rfind("CUDA runtime: ", 0) == 0);
    CHECK(why.size() > std::string("CUDA runtime: ").size());
    CHECK_THROWS_AS(kernels::device_buffer(0, 16), std::runtime_error);
    kernels::forecast_params p;
    p.samples = 10;
    CHECK_THROWS_AS(kernels::forecast_cuda(p, 0), std::runtime_error);
  }
}

TEST_CASE("a missing or foreign CUDA library is refused, naming the file" * doctest::timeout(10)) {
  std::string why;
  CHECK(kernels::open_cuda_library("/nonexistent/libloom_cuda.so", &why) == nullptr);
  CHECK(why.rfind("cannot open /nonexistent/libloom_cuda.so: ", 0) == 0);
  CHECK(kernels::open_cuda_library("libm.so.6", &why) == nullptr);
  CHECK(why == "libm.so.6 is not a loom CUDA library: it has no loom_cuda_table");
}
