// kernels/monte_carlo/monte_carlo_cpu.cpp: the CPU reference of the forecast (see monte_carlo.hpp for the model).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/monte_carlo/monte_carlo.hpp"

namespace loom::kernels {
namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A uniform in (0, 1] from 53 random bits.
double unit(std::uint64_t bits) { return (static_cast<double>(bits >> 11) + 1.0) * 0x1.0p-53; }

// Standard normal number `i` of stream `seed`: Box-Muller on two counter-based uniforms.
double normal_at(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t key = splitmix64(seed);
  double u1 = unit(splitmix64(key ^ (2 * i)));
  double u2 = unit(splitmix64(key ^ (2 * i + 1)));
  constexpr double two_pi = 6.283185307179586476925;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

quantiles summarize(std::vector<double>& xs) {
  quantiles q;
  q.mean = std::accumulate(xs.begin(), xs.end(), 0.0) / static_cast<double>(xs.size());
  auto at = [&](double f) {
    auto k = static_cast<std::ptrdiff_t>(f * static_cast<double>(xs.size() - 1));
    std::nth_element(xs.begin(), xs.begin() + k, xs.end());
    return xs[static_cast<std::size_t>(k)];
  };
  // Ascending order of k lets each nth_element work on a partly partitioned range.
  q.p10 = at(0.1);
  q.p50 = at(0.5);
  q.p90 = at(0.9);
  return q;
}

}  // namespace

forecast_moments forecast_analytic(const forecast_params& p) {
  double mc = p.customers_per_day, sc = p.customers_sd, mt = p.avg_ticket, st = p.ticket_sd;
  double daily_var = mc * mc * st * st + mt * mt * sc * sc + sc * sc * st * st;
  double days = static_cast<double>(p.days);
  return {days * mc * mt, std::sqrt(days * daily_var), p.fixed_costs_per_month * days * 12.0 / 365.0};
}

void check_forecast_params(const forecast_params& p) {
  auto bad = [](const std::string& what) { throw std::invalid_argument("forecast: " + what); };
  if (p.days < 1) bad("days must be at least 1");
  if (p.samples < 1) bad("samples must be at least 1");
  if (p.customers_sd < 0) bad("customers_sd must not be negative");
  if (p.ticket_sd < 0) bad("ticket_sd must not be negative");
  if (p.cost_of_goods < 0 || p.cost_of_goods > 1) bad("cost_of_goods must be a fraction in [0, 1]");
}

forecast_result forecast_cpu(const forecast_params& p) {
  check_forecast_params(p);
  auto m = forecast_analytic(p);
  auto n = static_cast<std::size_t>(p.samples);
  std::vector<double> revenue(n), profit(n);
  std::size_t losses = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double r = std::max(0.0, m.revenue_mean + m.revenue_sd * normal_at(p.seed, i));
    revenue[i] = r;
    profit[i] = r * (1.0 - p.cost_of_goods) - m.fixed_costs;
    losses += profit[i] < 0 ? 1 : 0;
  }
  forecast_result out;
  out.samples = p.samples;
  out.probability_of_loss = static_cast<double>(losses) / static_cast<double>(n);
  out.revenue = summarize(revenue);
  out.profit = summarize(profit);
  return out;
}

}  // namespace loom::kernels
