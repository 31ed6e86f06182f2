// bench/kernels_bench.cpp: loom_kernels_bench: the kernels' CPU paths against their ceilings in the same run
// (the Monte Carlo forecast on every core against one thread times the cores; gemm against the raw
// cblas_sgemm call on the same matrices) and, when a GPU is present, their CUDA paths (through libloom_cuda.so)
// against the raw library calls (cuRAND generate + a cuBLAS reduce; cublasSgemm). Prints markdown to stdout;
// best of a few repetitions. The bench itself links the CUDA libraries for the raw calls; loom does not.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <cblas.h>

#include "loom/kernels/device/buffer.hpp"
#include "loom/kernels/device/device.hpp"
#include "loom/kernels/gemm/gemm.hpp"
#include "loom/kernels/monte_carlo/monte_carlo.hpp"

#ifdef LOOM_BENCH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>
#endif

using namespace loom;
using namespace loom::kernels;

namespace {

// The best wall time of `reps` runs of `f`, in seconds.
double best_of(int reps, const std::function<void()>& f) {
  double best = 1e300;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// The best wall times of `reps` runs of `f` and of `g`, taken in turn (so a busy moment on a shared host
// hits both alike), in seconds.
std::pair<double, double> best_of_pair(int reps, const std::function<void()>& f, const std::function<void()>& g) {
  std::pair<double, double> best{1e300, 1e300};
  for (int i = 0; i < reps; ++i) {
    best.first = std::min(best.first, best_of(1, f));
    best.second = std::min(best.second, best_of(1, g));
  }
  return best;
}

tensor random_matrix(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (auto& x : v) x = d(rng);
  return tensor::from<float>({rows, cols}, v);
}

double gflops(std::int64_t n, double s) { return 2.0 * double(n) * double(n) * double(n) / s / 1e9; }

void cpu_section() {
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  fmt::print("## CPU paths against their ceilings\n\nBLAS: {}; {} cores.\n\n", cpu_blas_info(), cores);
  fmt::print("| kernel | size | loom | ceiling | loom / ceiling |\n|---|---|---|---|---|\n");
  for (std::int64_t samples : {100'000, 1'000'000}) {
    forecast_params p;
    p.samples = samples;
    auto [all, one] = best_of_pair(samples >= 1'000'000 ? 5 : 10, [&] { forecast_cpu(p); }, [&] { forecast_cpu(p, 1); });
    double rate = double(samples) / all / 1e6, ceiling = double(samples) / one / 1e6 * forecast_cpu_threads(p);
    fmt::print("| monte_carlo forecast_cpu on {} threads vs 1 thread x {} | {} samples | {:.1f} ms ({:.1f} M samples/s) "
               "| {:.1f} M samples/s (1 thread: {:.1f} ms) | {:.2f} |\n",
               forecast_cpu_threads(p), forecast_cpu_threads(p), samples, all * 1e3, rate, ceiling, one * 1e3,
               rate / ceiling);
  }
  for (std::int64_t n : {256, 512, 1024}) {
    auto a = random_matrix(n, n, 1), b = random_matrix(n, n, 2);
    int reps = n >= 1024 ? 5 : 10;
    gemm(a, b, {});  // warm-up: OpenBLAS starts its threads and buffers
    std::vector<float> c(std::size_t(n * n));
    int ni = int(n);
    auto [s, raw] = best_of_pair(reps, [&] { gemm(a, b, {}); }, [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0f, a.host_data<float>(), ni,
                  b.host_data<float>(), ni, 0.0f, c.data(), ni);
    });
    fmt::print("| gemm cpu (tensors, includes the output allocation) vs cblas_sgemm | {0}x{0} | {1:.2f} ms ({2:.1f} "
               "GFLOP/s) | {3:.2f} ms ({4:.1f} GFLOP/s) | {5:.2f} |\n",
               n, s * 1e3, gflops(n, s), raw * 1e3, gflops(n, raw), gflops(n, s) / gflops(n, raw));
  }
  fmt::print("\n");
}

#ifdef LOOM_BENCH_CUDA
void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("bench: ") + what + " failed");
}

void gpu_section(int dev) {
  fmt::print("## CUDA paths on cuda:{} against the raw library calls\n\n", dev);
  fmt::print("| kernel | size | loom | raw library | loom / raw |\n|---|---|---|---|---|\n");
  check(cudaSetDevice(dev) == cudaSuccess, "cudaSetDevice");
  cublasHandle_t h = nullptr;
  check(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
  for (std::int64_t samples : {1'000'000, 10'000'000}) {
    forecast_params p;
    p.samples = samples;
    forecast_cuda(p, dev);  // warm-up
    double loom_s = best_of(3, [&] { forecast_cuda(p, dev); });
    // Raw: generate the normals with cuRAND and reduce them once with cuBLAS (no sort, no quantiles).
    device_buffer z(dev, std::size_t(samples) * sizeof(double));
    curandGenerator_t g = nullptr;
    check(curandCreateGenerator(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10) == CURAND_STATUS_SUCCESS, "curandCreateGenerator");
    double raw_s = best_of(3, [&] {
      double sum = 0;
      curandGenerateNormalDouble(g, z.as<double>(), std::size_t(samples), 0.0, 1.0);
      cublasDasum(h, int(samples), z.as<double>(), 1, &sum);
      cudaDeviceSynchronize();
    });
    curandDestroyGenerator(g);
    fmt::print("| monte_carlo forecast_cuda vs curandGenerateNormalDouble + cublasDasum | {} samples | {:.2f} ms "
               "({:.0f} M samples/s) | {:.2f} ms | {:.2f} |\n",
               samples, loom_s * 1e3, double(samples) / loom_s / 1e6, raw_s * 1e3, loom_s / raw_s);
  }
  blas_handle bh(dev);
  for (std::int64_t n : {256, 512, 1024, 4096}) {
    auto a = to_device(random_matrix(n, n, 1), dev), b = to_device(random_matrix(n, n, 2), dev);
    gemm_options opt;
    opt.device = dev;
    opt.blas = &bh;
    gemm(a, b, opt);
    cudaDeviceSynchronize();
    double loom_s = best_of(5, [&] {
      gemm(a, b, opt);
      cudaDeviceSynchronize();
    });
    auto c = empty_on_device(dtype::f32, {n, n}, dev);
    auto ptr = [](const tensor& t) { return reinterpret_cast<float*>(const_cast<std::byte*>(t.data()->data())); };
    float alpha = 1, beta = 0;
    int ni = int(n);
    double raw_s = best_of(5, [&] {
      cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, ni, ni, ni, &alpha, ptr(b), ni, ptr(a), ni, &beta, ptr(c), ni);
      cudaDeviceSynchronize();
    });
    fmt::print("| gemm cuda (device tensors, includes the output cudaMalloc) vs cublasSgemm | {0}x{0} | {1:.3f} ms "
               "({2:.0f} GFLOP/s) | {3:.3f} ms ({4:.0f} GFLOP/s) | {5:.2f} |\n",
               n, loom_s * 1e3, gflops(n, loom_s), raw_s * 1e3, gflops(n, raw_s), loom_s / raw_s);
  }
  cublasDestroy(h);
  fmt::print("\n");
}
#endif

}  // namespace

int main() {
  std::string why;
  auto devices = find_devices(&why);
  fmt::print("# loom kernels benchmark\n\nDevices: {}\n\n", describe_devices());
  cpu_section();
  if (devices.empty()) {
    fmt::print("## CUDA paths\n\nSkipped: no GPU ({}).\n", why);
    return 0;
  }
#ifdef LOOM_BENCH_CUDA
  gpu_section(devices.front().index);
#else
  fmt::print("## CUDA paths\n\nSkipped: this build has no CUDA.\n");
#endif
  return 0;
}
