// kernels/monte_carlo/monte_carlo.cu: the CUDA path of the forecast (see monte_carlo.hpp for the model), part
// of libloom_cuda.so.
// cuRAND (Philox) fills a device buffer with standard normals, a kernel turns each into one sample's yearly
// revenue in place, thrust sums it (revenue, profit), counts the losses and sorts it on the device, and only
// the three quantiles, the sums and the loss count come back to the host.
#include <cuda_runtime.h>
#include <curand.h>
#include <thrust/count.h>
#include <thrust/functional.h>
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/reduce.h>
#include <thrust/sort.h>
#include <thrust/transform_reduce.h>

#include <stdexcept>
#include <string>

#include "loom/kernels/cuda/entries.hpp"

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

// Turns each standard normal into that sample's yearly revenue, in place.
__global__ void revenue_kernel(double* z, long long n, double mean, double sd) {
  long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  z[i] = fmax(0.0, mean + sd * z[i]);
}

// Profit is a non-decreasing function of revenue (margin >= 0): its quantiles are that function of the
// revenue quantiles, so only the revenue is sorted (as on the CPU path).
struct profit_of {
  double margin, fixed;
  __host__ __device__ double operator()(double r) const { return r * margin - fixed; }
};

struct loss {
  double margin, fixed;
  __host__ __device__ bool operator()(double r) const { return r * margin - fixed < 0; }
};

}  // namespace

void forecast(const forecast_params& p, const forecast_moments& m, int device, void* stream, forecast_result* result) {
  check(cudaSetDevice(device), "cudaSetDevice");
  auto s = static_cast<cudaStream_t>(stream);
  auto policy = thrust::cuda::par.on(s);
  long long n = p.samples;
  long long n_even = n + (n % 2);  // cuRAND's normal generators produce pairs
  doubles z(static_cast<std::size_t>(n_even));

  generator gen;
  check(curandSetStream(gen.g, s), "curandSetStream");
  check(curandSetPseudoRandomGeneratorSeed(gen.g, p.seed), "curandSetPseudoRandomGeneratorSeed");
  check(curandGenerateNormalDouble(gen.g, z.p, static_cast<std::size_t>(n_even), 0.0, 1.0), "curandGenerateNormalDouble");

  constexpr int threads = 256;
  auto blocks = static_cast<unsigned>((n + threads - 1) / threads);
  revenue_kernel<<<blocks, threads, 0, s>>>(z.p, n, m.revenue_mean, m.revenue_sd);
  check(cudaGetLastError(), "revenue_kernel launch");

  const profit_of profit{1.0 - p.cost_of_goods, m.fixed_costs};
  thrust::device_ptr<double> r(z.p);
  double revenue_sum = thrust::reduce(policy, r, r + n, 0.0);
  double profit_sum = thrust::transform_reduce(policy, r, r + n, profit, 0.0, thrust::plus<double>());
  auto losses = thrust::count_if(policy, r, r + n, loss{profit.margin, profit.fixed});
  thrust::sort(policy, r, r + n);

  double q[3] = {0, 0, 0};
  const double at[3] = {0.1, 0.5, 0.9};
  for (int i = 0; i < 3; ++i) {
    auto k = static_cast<long long>(at[i] * static_cast<double>(n - 1));
    check(cudaMemcpyAsync(&q[i], z.p + k, sizeof(double), cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync");
  }
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");

  forecast_result out;
  out.samples = p.samples;
  out.probability_of_loss = static_cast<double>(losses) / static_cast<double>(n);
  out.revenue = {q[0], q[1], q[2], revenue_sum / static_cast<double>(n)};
  out.profit = {profit(q[0]), profit(q[1]), profit(q[2]), profit_sum / static_cast<double>(n)};
  *result = out;
}

}  // namespace loom::kernels::cuda_impl
