// kernels/monte_carlo/monte_carlo_cpu.cpp: the CPU path of the forecast (see monte_carlo.hpp for the model) on
// every core, and the CUDA path's entry in the core (a call through libloom_cuda.so's table).
//
// Work is cut into chunks of forecast_chunk samples; threads take chunks in turn. Each chunk writes its
// samples' revenue and its own partial sums (revenue, profit, losses), and the partial sums are added in chunk
// order afterwards, so the result is the same bit for bit on any number of threads. Profit is a non-decreasing
// function of revenue (margin = 1 - cost_of_goods >= 0), so the profit quantiles are that function of the
// revenue quantiles: only the revenue samples are kept and selected. The selection runs on every core too:
// the first pass also counts the samples per bucket of revenue, which tells in which bucket each quantile's
// rank falls; a second pass picks out the samples of those buckets (a few thousand), and the quantile is
// selected among them.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "loom/kernels/cuda/cuda_library.hpp"
#include "loom/kernels/monte_carlo/monte_carlo.hpp"

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

// Standard normal number `i` of the stream keyed `key` (splitmix64 of the seed): Box-Muller on two
// counter-based uniforms.
double normal_at(std::uint64_t key, std::uint64_t i) {
  double u1 = unit(splitmix64(key ^ (2 * i)));
  double u2 = unit(splitmix64(key ^ (2 * i + 1)));
  constexpr double two_pi = 6.283185307179586476925;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

struct chunk_sums {
  double revenue = 0, profit = 0;
  std::size_t losses = 0;
};

// Buckets of revenue values for the quantile selection: `count` equal buckets over mean +- 6 sd, the first
// and last also taking everything below and above. A pure function of the value, so both passes agree.
struct buckets {
  static constexpr std::size_t count = 4096;
  double low, scale;
  buckets(double mean, double sd) : low(mean - 6 * sd), scale(sd > 0 ? double(count) / (12 * sd) : 0) {}
  std::size_t of(double r) const {
    double x = (r - low) * scale;
    if (!(x > 0)) return 0;  // below the range, or sd == 0: one bucket holds everything
    return x >= double(count - 1) ? count - 1 : static_cast<std::size_t>(x);
  }
};

// Runs `body(chunk)` for every chunk in [0, chunks) on `threads` threads (this one included).
template <class F>
void for_each_chunk(std::size_t chunks, unsigned threads, const F& body) {
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) body(c);
  };
  std::vector<std::jthread> helpers;
  helpers.reserve(threads > 0 ? threads - 1 : 0);
  for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(work);
  work();
}  // the helpers join here

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

unsigned forecast_cpu_threads(const forecast_params& p, unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  auto chunks = static_cast<std::uint64_t>((std::max<std::int64_t>(p.samples, 1) + forecast_chunk - 1) / forecast_chunk);
  return static_cast<unsigned>(std::min<std::uint64_t>(threads, chunks));
}

forecast_result forecast_cpu(const forecast_params& p, unsigned threads) {
  check_forecast_params(p);
  const auto m = forecast_analytic(p);
  const double margin = 1.0 - p.cost_of_goods;
  auto profit_of = [&](double r) { return r * margin - m.fixed_costs; };
  const std::uint64_t key = splitmix64(p.seed);
  const auto n = static_cast<std::size_t>(p.samples);
  const std::size_t chunk = forecast_chunk, chunks = (n + chunk - 1) / chunk;
  const unsigned workers = forecast_cpu_threads(p, threads);

  // Pass 1, on every core: each chunk draws its samples, adds its sums and counts its samples per bucket.
  const buckets bucket(m.revenue_mean, m.revenue_sd);
  std::vector<double> revenue(n);
  std::vector<chunk_sums> sums(chunks);
  std::vector<std::uint32_t> counts(chunks * buckets::count);
  for_each_chunk(chunks, workers, [&](std::size_t c) {
    chunk_sums s;
    std::uint32_t* count = counts.data() + c * buckets::count;
    for (std::size_t i = c * chunk, end = std::min(n, i + chunk); i < end; ++i) {
      double r = std::max(0.0, m.revenue_mean + m.revenue_sd * normal_at(key, i));
      double pr = profit_of(r);
      revenue[i] = r;
      s.revenue += r;
      s.profit += pr;
      s.losses += pr < 0 ? 1 : 0;
      ++count[bucket.of(r)];
    }
    sums[c] = s;
  });

  chunk_sums total;
  for (const auto& s : sums) {  // in chunk order: the same sums whatever the threads
    total.revenue += s.revenue;
    total.profit += s.profit;
    total.losses += s.losses;
  }

  // Nearest-rank quantiles (rank floor(q * (n - 1)) of the sorted samples). The bucket counts say which
  // bucket holds each rank and how many samples lie in the buckets before it.
  std::vector<std::size_t> before(buckets::count + 1, 0);
  for (std::size_t b = 0; b < buckets::count; ++b) {
    std::size_t in = 0;
    for (std::size_t c = 0; c < chunks; ++c) in += counts[c * buckets::count + b];
    before[b + 1] = before[b] + in;
  }
  constexpr std::array<double, 3> qs{0.1, 0.5, 0.9};
  std::array<std::size_t, 3> rank{}, home{};
  for (std::size_t j = 0; j < qs.size(); ++j) {
    rank[j] = static_cast<std::size_t>(qs[j] * static_cast<double>(n - 1));
    home[j] = static_cast<std::size_t>(std::upper_bound(before.begin(), before.end(), rank[j]) - before.begin()) - 1;
  }
  // Pass 2, on every core: each chunk picks out its samples in those (at most three) buckets; then the
  // k-th of each bucket's samples, gathered in chunk order, is the quantile.
  std::vector<std::array<std::vector<double>, 3>> picked(chunks);
  for_each_chunk(chunks, workers, [&](std::size_t c) {
    for (std::size_t i = c * chunk, end = std::min(n, i + chunk); i < end; ++i) {
      std::size_t b = bucket.of(revenue[i]);
      for (std::size_t j = 0; j < 3; ++j)
        if (b == home[j]) {
          picked[c][j].push_back(revenue[i]);
          break;  // equal homes share the first one's list
        }
    }
  });
  std::array<double, 3> q{};
  for (std::size_t j = 0; j < 3; ++j) {
    std::size_t first = j;  // the list that holds home[j]'s samples
    while (first > 0 && home[first - 1] == home[j]) --first;
    std::vector<double> in;
    in.reserve(before[home[j] + 1] - before[home[j]]);
    for (const auto& chunk_picked : picked) in.insert(in.end(), chunk_picked[first].begin(), chunk_picked[first].end());
    auto k = static_cast<std::ptrdiff_t>(rank[j] - before[home[j]]);
    std::nth_element(in.begin(), in.begin() + k, in.end());
    q[j] = in[static_cast<std::size_t>(k)];
  }

  forecast_result out;
  out.samples = p.samples;
  const auto count = static_cast<double>(n);
  out.probability_of_loss = static_cast<double>(total.losses) / count;
  const double r10 = q[0], r50 = q[1], r90 = q[2];
  out.revenue = {r10, r50, r90, total.revenue / count};
  out.profit = {profit_of(r10), profit_of(r50), profit_of(r90), total.profit / count};
  return out;
}

forecast_result forecast_cuda(const forecast_params& p, int device, void* stream) {
  check_forecast_params(p);
  const auto& cuda = require_cuda_library("forecast_cuda");
  forecast_result out;
  cuda.forecast(p, forecast_analytic(p), device, stream, &out);
  return out;
}

}  // namespace loom::kernels
