// tests/kernels/monte_carlo_test.cpp: the forecast's CPU reference against the analytic answer of its model,
// determinism for a seed, parameter checks, and the CUDA path against the CPU reference (quantiles and means
// within 2% relative, probability of loss within 0.01 absolute) when a GPU is present.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <utility>

#include "kernels/monte_carlo/monte_carlo.hpp"
#include "tests/kernels/gpu.hpp"

using namespace loom::kernels;

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
