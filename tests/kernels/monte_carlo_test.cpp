// tests/kernels/monte_carlo_test.cpp: the forecast's CPU path against the analytic answer of its model and
// against a one-thread sequential re-implementation of the documented generator, determinism for a seed
// whatever the number of threads, parameter checks, and the CUDA path against the CPU path (quantiles and
// means within 2% relative, probability of loss within 0.01 absolute) when a GPU is present.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "loom/kernels/monte_carlo/monte_carlo.hpp"
#include "tests/kernels/gpu.hpp"

using namespace loom::kernels;

namespace {

// The model and generator as monte_carlo.hpp documents them, written the plain way: one thread, every
// sample's revenue and profit kept, each sorted, nearest-rank quantiles, sums in sample order.
forecast_result sequential_reference(const forecast_params& p) {
  auto mix = [](std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  auto unit = [](std::uint64_t bits) { return (static_cast<double>(bits >> 11) + 1.0) * 0x1.0p-53; };
  auto m = forecast_analytic(p);
  std::uint64_t key = mix(p.seed);
  auto n = static_cast<std::size_t>(p.samples);
  std::vector<double> revenue(n), profit(n);
  double rsum = 0, psum = 0;
  std::size_t losses = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double u1 = unit(mix(key ^ (2 * i))), u2 = unit(mix(key ^ (2 * i + 1)));
    double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
    revenue[i] = std::max(0.0, m.revenue_mean + m.revenue_sd * z);
    profit[i] = revenue[i] * (1.0 - p.cost_of_goods) - m.fixed_costs;
    rsum += revenue[i];
    psum += profit[i];
    losses += profit[i] < 0 ? 1 : 0;
  }
  std::sort(revenue.begin(), revenue.end());
  std::sort(profit.begin(), profit.end());
  auto at = [&](const std::vector<double>& xs, double q) { return xs[std::size_t(q * double(n - 1))]; };
  forecast_result r;
  r.samples = p.samples;
  r.revenue = {at(revenue, 0.1), at(revenue, 0.5), at(revenue, 0.9), rsum / double(n)};
  r.profit = {at(profit, 0.1), at(profit, 0.5), at(profit, 0.9), psum / double(n)};
  r.probability_of_loss = double(losses) / double(n);
  return r;
}

void check_same(const forecast_result& a, const forecast_result& b) {
  CHECK(a.samples == b.samples);
  CHECK(a.revenue.p10 == b.revenue.p10);
  CHECK(a.revenue.p50 == b.revenue.p50);
  CHECK(a.revenue.p90 == b.revenue.p90);
  CHECK(a.revenue.mean == b.revenue.mean);
  CHECK(a.profit.p10 == b.profit.p10);
  CHECK(a.profit.p50 == b.profit.p50);
  CHECK(a.profit.p90 == b.profit.p90);
  CHECK(a.profit.mean == b.profit.mean);
  CHECK(a.probability_of_loss == b.probability_of_loss);
}

void check_like_reference(const forecast_params& p) {
  auto got = forecast_cpu(p);
  auto want = sequential_reference(p);
  // Quantiles and the loss count are exact; the means are summed in another order (per chunk).
  CHECK(got.revenue.p10 == want.revenue.p10);
  CHECK(got.revenue.p50 == want.revenue.p50);
  CHECK(got.revenue.p90 == want.revenue.p90);
  CHECK(got.profit.p10 == want.profit.p10);
  CHECK(got.profit.p50 == want.profit.p50);
  CHECK(got.profit.p90 == want.profit.p90);
  CHECK(got.probability_of_loss == want.probability_of_loss);
  CHECK(got.revenue.mean == doctest::Approx(want.revenue.mean).epsilon(1e-12));
  CHECK(got.profit.mean == doctest::Approx(want.profit.mean).epsilon(1e-9));
}
}  // namespace

TEST_CASE("the forecast's median and mean are near the analytic mean, and p10 < p50 < p90" * doctest::timeout(30)) {
  forecast_params p;
  auto r = forecast_cpu(p);
  auto m = forecast_analytic(p);
  CHECK(r.samples == p.samples);
  CHECK(r.revenue.p50 == doctest::Approx(m.revenue_mean).epsilon(0.002));
  CHECK(r.revenue.mean == doctest::Approx(m.revenue_mean).epsilon(0.002));
  CHECK(r.revenue.p10 < r.revenue.p50);
  CHECK(r.revenue.p50 < r.revenue.p90);
  // For a normal, p90 - p10 = 2 * 1.2816 sd.
  CHECK(r.revenue.p90 - r.revenue.p10 == doctest::Approx(2 * 1.2816 * m.revenue_sd).epsilon(0.02));
  double expected_profit = m.revenue_mean * (1 - p.cost_of_goods) - m.fixed_costs;
  CHECK(r.profit.p50 == doctest::Approx(expected_profit).epsilon(0.005));
  CHECK(r.profit.p10 < r.profit.p50);
  CHECK(r.profit.p50 < r.profit.p90);
  CHECK(r.probability_of_loss == 0.0);  // the defaults make a profit by more than 30 sd
}

TEST_CASE("the forecast is the same for the same seed and differs for another" * doctest::timeout(30)) {
  forecast_params p;
  p.samples = 20000;
  auto a = forecast_cpu(p), b = forecast_cpu(p);
  CHECK(a.revenue.p10 == b.revenue.p10);
  CHECK(a.revenue.p90 == b.revenue.p90);
  CHECK(a.profit.mean == b.profit.mean);
  p.seed = 7;
  auto c = forecast_cpu(p);
  CHECK(c.revenue.p50 != a.revenue.p50);
}

TEST_CASE("a forecast whose costs exceed its margin mostly loses money" * doctest::timeout(30)) {
  forecast_params p;
  p.customers_per_day = 10;  // 31,000 of margin against 72,000 of fixed costs: 8 sd short
  p.customers_sd = 5;
  p.fixed_costs_per_month = 6000;
  auto r = forecast_cpu(p);
  CHECK(r.probability_of_loss > 0.99);
  CHECK(r.profit.p90 < 0);
  // Near break-even, about half the years lose money.
  forecast_params even;
  auto m = forecast_analytic(even);
  even.fixed_costs_per_month *= m.revenue_mean * (1 - even.cost_of_goods) / m.fixed_costs;
  auto e = forecast_cpu(even);
  CHECK(e.probability_of_loss == doctest::Approx(0.5).epsilon(0.02));
}

TEST_CASE("one sample and a single day are valid forecasts" * doctest::timeout(10)) {
  forecast_params p;
  p.samples = 1;
  p.days = 1;
  auto r = forecast_cpu(p);
  CHECK(r.revenue.p10 == r.revenue.p90);
  CHECK(r.revenue.mean == r.revenue.p50);
}

TEST_CASE("forecast parameters out of range are refused, naming the field" * doctest::timeout(10)) {
  forecast_params p;
  p.samples = 0;
  CHECK_THROWS_WITH_AS(forecast_cpu(p), "forecast: samples must be at least 1", std::invalid_argument);
  p = {};
  p.cost_of_goods = 1.5;
  CHECK_THROWS_WITH_AS(forecast_cpu(p), "forecast: cost_of_goods must be a fraction in [0, 1]", std::invalid_argument);
}

TEST_CASE("the forecast's CUDA path agrees with the CPU reference within 2%" * doctest::timeout(60)) {
  auto gpu = loom::test::gpu_or_skip();
  if (!gpu) return;
  for (double customers : {120.0, 40.0}) {
    forecast_params p;
    p.customers_per_day = customers;
    p.samples = 1'000'000;
    auto cpu = forecast_cpu(p);
    auto cuda = forecast_cuda(p, *gpu);
    CHECK(cuda.samples == p.samples);
    for (auto [x, y] : {std::pair{cuda.revenue.p10, cpu.revenue.p10}, {cuda.revenue.p50, cpu.revenue.p50},
                        {cuda.revenue.p90, cpu.revenue.p90}, {cuda.revenue.mean, cpu.revenue.mean},
                        {cuda.profit.p10, cpu.profit.p10}, {cuda.profit.p50, cpu.profit.p50},
                        {cuda.profit.p90, cpu.profit.p90}, {cuda.profit.mean, cpu.profit.mean}})
      CHECK(x == doctest::Approx(y).epsilon(0.02));
    CHECK(std::fabs(cuda.probability_of_loss - cpu.probability_of_loss) < 0.01);
  }
}

TEST_CASE("the forecast is the same bit for bit on 1, 2, 3 and 8 threads" * doctest::timeout(60)) {
  forecast_params p;
  p.customers_per_day = 40;  // near break-even: losses and profits both occur
  for (std::int64_t samples : {std::int64_t(1), std::int64_t(1000), 3 * forecast_chunk + 17, std::int64_t(400'000)}) {
    CAPTURE(samples);
    p.samples = samples;
    auto one = forecast_cpu(p, 1);
    for (unsigned threads : {2u, 3u, 8u, 0u}) {
      CAPTURE(threads);
      check_same(forecast_cpu(p, threads), one);
    }
  }
}

TEST_CASE("the forecast on every core matches a sequential run of the documented model" * doctest::timeout(60)) {
  forecast_params near_break_even, floored, no_spread, tiny;
  near_break_even.customers_per_day = 40;
  near_break_even.samples = 5 * forecast_chunk + 123;
  floored.customers_per_day = 2;  // a wide spread around a small mean: many years floored at 0 revenue
  floored.customers_sd = 60;
  floored.days = 3;
  floored.samples = 3 * forecast_chunk;
  no_spread.customers_sd = 0;  // every sample the same
  no_spread.ticket_sd = 0;
  no_spread.samples = 2 * forecast_chunk + 5;
  tiny.samples = 3;
  for (const auto& p : {near_break_even, floored, no_spread, tiny}) {
    CAPTURE(p.samples);
    CAPTURE(p.customers_per_day);
    check_like_reference(p);
  }
  CHECK(sequential_reference(floored).revenue.p10 == 0.0);  // the floored case does reach the floor
  CHECK(forecast_cpu(no_spread).revenue.p10 == forecast_cpu(no_spread).revenue.p90);
}


TEST_CASE("the forecast's CPU path runs on every core when there is enough work" * doctest::timeout(10)) {
  forecast_params p;
  p.samples = 1'000'000;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  CHECK(forecast_cpu_threads(p) == std::min<unsigned>(cores, unsigned((p.samples + forecast_chunk - 1) / forecast_chunk)));
  CHECK(forecast_cpu_threads(p, 5) == 5);
  p.samples = 10;  // one chunk: one thread
  CHECK(forecast_cpu_threads(p) == 1);
}
