// kernels/monte_carlo/monte_carlo.hpp: a Monte Carlo forecast of a year of a small business (revenue, profit),
// with a CPU path on every core (monte_carlo_cpu.cpp) and a CUDA path (monte_carlo.cu, in libloom_cuda.so, opened
// on first use).
//
// The model, per sample (one simulated year of `days` days):
//   daily customers  C_d ~ Normal(customers_per_day, customers_sd)      (independent days)
//   daily ticket     T_d ~ Normal(avg_ticket, ticket_sd)                  (independent of C_d)
//   daily revenue    R_d = C_d * T_d:  mean m = mu_c * mu_t,
//                    variance v = mu_c^2 sd_t^2 + mu_t^2 sd_c^2 + sd_c^2 sd_t^2
//   yearly revenue   R = sum of the `days` R_d; by the central limit theorem (365 terms) it is drawn as ONE
//                    normal, Normal(days * m, sqrt(days * v)), floored at 0. One normal per sample.
//   yearly profit    P = R * (1 - cost_of_goods) - fixed_costs_per_month * days * 12 / 365
// Quantiles are nearest-rank on the sorted samples: q -> element floor(q * (samples - 1)).
// The CPU path is deterministic for a seed: sample i draws its normal from a counter-based generator keyed
// by (seed, i) (splitmix64 + Box-Muller), and the sums are added per fixed-size chunk of samples and then in
// chunk order, so the result is the same bit for bit whatever the number of threads. The CUDA path draws its
// normals with cuRAND (Philox) and agrees with the CPU path statistically, not bit for bit.
#pragma once

#include <cstdint>

namespace loom::kernels {

struct forecast_params {
  std::int64_t days = 365;
  double customers_per_day = 120;
  double customers_sd = 30;
  double avg_ticket = 12.5;
  double ticket_sd = 2.5;
  double fixed_costs_per_month = 6000;
  double cost_of_goods = 0.32;  // fraction of revenue
  std::int64_t samples = 100000;
  std::uint64_t seed = 42;
};

struct quantiles {
  double p10 = 0, p50 = 0, p90 = 0, mean = 0;
};

struct forecast_result {
  std::int64_t samples = 0;
  quantiles revenue;
  quantiles profit;
  double probability_of_loss = 0;  // fraction of samples with profit < 0
};

// The analytic mean and standard deviation of the yearly revenue (before the floor at 0) and the fixed costs
// of the period: what the tests check the simulations against.
struct forecast_moments {
  double revenue_mean = 0, revenue_sd = 0, fixed_costs = 0;
};
forecast_moments forecast_analytic(const forecast_params& p);

// Throws std::invalid_argument naming the field when a parameter is out of range (days < 1, samples < 1,
// a negative sd, cost_of_goods outside [0, 1]).
void check_forecast_params(const forecast_params& p);

// Samples per chunk of the CPU path: the unit of work of one thread, and of the partial sums.
constexpr std::int64_t forecast_chunk = 1 << 15;

// The CPU path on `threads` threads (0: every core, std::thread::hardware_concurrency()). The result does not
// depend on `threads`.
forecast_result forecast_cpu(const forecast_params& p, unsigned threads = 0);
// How many threads forecast_cpu(p, threads) runs on: `threads` (0: every core), at most one per chunk.
unsigned forecast_cpu_threads(const forecast_params& p, unsigned threads = 0);

// The CUDA path on GPU `device`, on `stream` (a cudaStream_t; nullptr: the default stream), through
// libloom_cuda.so. Throws std::invalid_argument for bad parameters and std::runtime_error with the
// CUDA/cuRAND error on failure, or saying why the CUDA library is not available.
forecast_result forecast_cuda(const forecast_params& p, int device, void* stream = nullptr);

}  // namespace loom::kernels
