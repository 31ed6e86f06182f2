// kernels/monte_carlo/monte_carlo.cu: the CUDA path of the forecast (see monte_carlo.hpp for the model), part
// of libloom_cuda.so.
// cuRAND (Philox) fills a device buffer with standard normals, a kernel turns each into one sample's yearly
// revenue and profit, thrust sorts both arrays on the device, and only the three quantiles, the means and
// the loss count come back to the host.
#include <cuda_runtime.h>
#include <curand.h>
#include <thrust/count.h>
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/reduce.h>
#include <thrust/sort.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/entries.hpp"

namespace loom::kernels::cuda_impl {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("forecast_cuda: ") + what + ": " + cudaGetErrorString(e));
}
void check(curandStatus_t s, const char* what) {
  if (s != CURAND_STATUS_SUCCESS)
    throw std::runtime_error(std::string("forecast_cuda: ") + what + ": cuRAND status " + std::to_string(int(s)));
}

// Owns one cudaMalloc'd array of doubles (kept local: this file includes no loom headers but its own).
struct doubles {
  double* p = nullptr;
  explicit doubles(std::size_t n) { check(cudaMalloc(&p, n * sizeof(double)), "cudaMalloc"); }
  ~doubles() { cudaFree(p); }
  doubles(const doubles&) = delete;
  doubles& operator=(const doubles&) = delete;
};

struct generator {
  curandGenerator_t g = nullptr;
  generator() { check(curandCreateGenerator(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10), "curandCreateGenerator"); }
  ~generator() { curandDestroyGenerator(g); }
  generator(const generator&) = delete;
  generator& operator=(const generator&) = delete;
};

__global__ void samples_kernel(const double* z, double* revenue, double* profit, long long n, double mean,
                               double sd, double margin, double fixed) {
  long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  double r = fmax(0.0, mean + sd * z[i]);
  revenue[i] = r;
  profit[i] = r * margin - fixed;
}

struct negative {
  __host__ __device__ bool operator()(double x) const { return x < 0; }
};

quantiles summarize(double* d, long long n, cudaStream_t s) {
  auto policy = thrust::cuda::par.on(s);
  thrust::device_ptr<double> p(d);
  quantiles q;
  q.mean = thrust::reduce(policy, p, p + n, 0.0) / static_cast<double>(n);
  thrust::sort(policy, p, p + n);
  auto at = [&](double f) {
    double x = 0;
    auto k = static_cast<long long>(f * static_cast<double>(n - 1));
    check(cudaMemcpyAsync(&x, d + k, sizeof(double), cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    return x;
  };
  q.p10 = at(0.1);
  q.p50 = at(0.5);
  q.p90 = at(0.9);
  return q;
}

}  // namespace

void forecast(const forecast_params& p, const forecast_moments& m, int device, void* stream, forecast_result* result) {
  check(cudaSetDevice(device), "cudaSetDevice");
  auto s = static_cast<cudaStream_t>(stream);
  long long n = p.samples;
  long long n_even = n + (n % 2);  // cuRAND's normal generators produce pairs
  doubles z(static_cast<std::size_t>(n_even)), revenue(static_cast<std::size_t>(n)), profit(static_cast<std::size_t>(n));

  generator gen;
  check(curandSetStream(gen.g, s), "curandSetStream");
  check(curandSetPseudoRandomGeneratorSeed(gen.g, p.seed), "curandSetPseudoRandomGeneratorSeed");
  check(curandGenerateNormalDouble(gen.g, z.p, static_cast<std::size_t>(n_even), 0.0, 1.0), "curandGenerateNormalDouble");

  constexpr int threads = 256;
  auto blocks = static_cast<unsigned>((n + threads - 1) / threads);
  samples_kernel<<<blocks, threads, 0, s>>>(z.p, revenue.p, profit.p, n, m.revenue_mean, m.revenue_sd,
                                           1.0 - p.cost_of_goods, m.fixed_costs);
  check(cudaGetLastError(), "samples_kernel launch");

  forecast_result out;
  out.samples = p.samples;
  thrust::device_ptr<double> pp(profit.p);
  auto losses = thrust::count_if(thrust::cuda::par.on(s), pp, pp + n, negative{});
  out.probability_of_loss = static_cast<double>(losses) / static_cast<double>(n);
  out.revenue = summarize(revenue.p, n, s);
  out.profit = summarize(profit.p, n, s);
  *result = out;
}

}  // namespace loom::kernels::cuda_impl
