// tests/kernels/gemm_actor_test.cpp: the kernel.gemm actor run alone (tests/actors/harness.hpp): a map or a list
// in, the product out; the CPU path when asked or when there is no GPU; the product stays on the GPU when there
// is one.
#include <doctest/doctest.h>

#include "loom/kernels/device/buffer.hpp"
#include "loom/kernels/device/device.hpp"
#include "tests/actors/harness.hpp"
#include "tests/kernels/gpu.hpp"

using namespace loom;

namespace {

value pair_map() {
  return value{value_map{{"a", tensor::from<float>({1, 2}, {1, 2})}, {"b", tensor::from<float>({2, 1}, {3, 4})}}};
}

}  // namespace

TEST_CASE("kernel.gemm multiplies a map {a, b} and a list [a, b, c] on the cpu" * doctest::timeout(10)) {
  test::running n("kernel.gemm", {{"device", "cpu"}, {"alpha", 2.0}, {"beta", 1.0}});
  n.start();
  n.send(pair_map());
  auto c = tensor::from<float>({1, 1}, {100});
  n.send(value{value_list{tensor::from<float>({1, 2}, {1, 2}), tensor::from<float>({2, 1}, {3, 4}), c}});
  n.finish();
  REQUIRE(n.out().size() == 2);
  CHECK(n.out()[0].as_tensor().host_data<float>()[0] == 22);
  CHECK(n.out()[1].as_tensor().host_data<float>()[0] == 122);
}

TEST_CASE("kernel.gemm refuses an input that is not two matrices, saying what it found" * doctest::timeout(10)) {
  test::running n("kernel.gemm", {{"device", "cpu"}});
  n.start();
  CHECK_THROWS_WITH_AS(n.send(value{"ab"}), "kernel.gemm: expected a map {a, b} or a list [a, b], found string",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(n.send(value{value_map{{"a", 1}}}), "kernel.gemm: `a` must be a tensor, found int",
                       std::invalid_argument);
}

TEST_CASE("kernel.gemm on auto runs where a GPU is, or on the cpu without one" * doctest::timeout(30)) {
  test::running n("kernel.gemm", {});
  n.start();
  n.send(pair_map());
  REQUIRE(n.out().size() == 1);
  const auto& t = n.out()[0].as_tensor();
  auto devices = kernels::find_devices();
  if (devices.empty()) {
    MESSAGE("no GPU: kernel.gemm ran its CPU path");
    CHECK(t.device() == -1);
  } else {
    CHECK(t.device() == devices.front().index);  // stays on the GPU for the next kernel
  }
  CHECK(kernels::to_host(t).host_data<float>()[0] == 11);
}

TEST_CASE("kernel.gemm with device cuda fails at start when there is no GPU" * doctest::timeout(10)) {
  if (!kernels::find_devices().empty()) {
    MESSAGE("a GPU is present: nothing to refuse");
    return;
  }
  test::running n("kernel.gemm", {{"device", "cuda"}});
  CHECK_THROWS_AS(n.start(), std::runtime_error);
}
