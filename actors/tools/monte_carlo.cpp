// tool.monte_carlo: a year's revenue and profit forecast of a small business by Monte Carlo simulation (the
// kernel in kernels/monte_carlo/, model documented there), on a GPU when there is one.
//   params:  device (string auto|cpu|cuda, default auto)
//   call:    days, customers_per_day, customers_sd, avg_ticket, ticket_sd, fixed_costs_per_month,
//            cost_of_goods (fraction), samples (1..10,000,000), seed (all optional, with defaults)
//   reply:   {samples, device ("cpu" | "cuda:N"), revenue: {p10, p50, p90, mean}, profit: {p10, p50, p90, mean},
//            probability_of_loss}
//   resources: gpus 1, cpu_fallback
#include <spdlog/spdlog.h>

#include <memory>

#include "loom/actors/kernels/device_choice.hpp"
#include "loom/actors/kinds.hpp"
#include "loom/kernels/monte_carlo/monte_carlo.hpp"
#include "loom/runtime/schema.hpp"

namespace loom::actors {
namespace {

graph::call_spec monte_carlo_call() {
  using graph::param_spec;
  kernels::forecast_params d;
  return {"Forecasts a year of a small business (e.g. a food truck) by Monte Carlo simulation: revenue and "
          "profit percentiles (p10, p50, p90), means and the probability of a loss.",
          {param_spec::integer("days", "trading days simulated").def(d.days).at_least(1).at_most(3660),
           param_spec::floating("customers_per_day", "mean customers per day").def(d.customers_per_day).at_least(0),
           param_spec::floating("customers_sd", "standard deviation of daily customers").def(d.customers_sd).at_least(0),
           param_spec::floating("avg_ticket", "mean spend per customer").def(d.avg_ticket).at_least(0),
           param_spec::floating("ticket_sd", "standard deviation of the spend per customer").def(d.ticket_sd).at_least(0),
           param_spec::floating("fixed_costs_per_month", "rent, permits, insurance, wages...")
               .def(d.fixed_costs_per_month).at_least(0),
           param_spec::floating("cost_of_goods", "cost of goods as a fraction of revenue").def(d.cost_of_goods)
               .at_least(0).at_most(1),
           param_spec::integer("samples", "simulated years").def(d.samples).at_least(1).at_most(10'000'000),
           param_spec::integer("seed", "random seed: the same seed gives the same forecast").def(42).at_least(0)}};
}

value summary(const kernels::quantiles& q) {
  return value{value_map{{"p10", q.p10}, {"p50", q.p50}, {"p90", q.p90}, {"mean", q.mean}}};
}

class monte_carlo final : public node {
 public:
  explicit monte_carlo(const node_init& init)
      : name_(init.name), asked_(init.params.get_string("device")), instance_(init.instance), planned_(init.device) {}

  void on_start(context&) override {
    where_ = choose_device(asked_, instance_, planned_);
    started_ = true;
    if (where_.device < 0)
      spdlog::info("node={} kind=tool.monte_carlo device=cpu: running the CPU path ({})", name_, where_.why);
    else
      spdlog::info("node={} kind=tool.monte_carlo device={}", name_, where_.name());
  }

  value on_call(context& ctx, const value& request) override {
    if (!started_) on_start(ctx);
    value req = check_call_request(monte_carlo_call(), request);
    kernels::forecast_params p;
    p.days = req.find("days")->as_int();
    p.customers_per_day = req.find("customers_per_day")->as_float();
    p.customers_sd = req.find("customers_sd")->as_float();
    p.avg_ticket = req.find("avg_ticket")->as_float();
    p.ticket_sd = req.find("ticket_sd")->as_float();
    p.fixed_costs_per_month = req.find("fixed_costs_per_month")->as_float();
    p.cost_of_goods = req.find("cost_of_goods")->as_float();
    p.samples = req.find("samples")->as_int();
    p.seed = static_cast<std::uint64_t>(req.find("seed")->as_int());
    kernels::forecast_result r = run(p);
    return value{value_map{{"samples", r.samples}, {"device", where_.name()}, {"revenue", summary(r.revenue)},
                           {"profit", summary(r.profit)}, {"probability_of_loss", r.probability_of_loss}}};
  }

 private:
  kernels::forecast_result run(const kernels::forecast_params& p) const {
    if (where_.device >= 0) return kernels::forecast_cuda(p, where_.device);
    return kernels::forecast_cpu(p);
  }

  std::string name_;
  std::string asked_;
  int instance_;
  int planned_;  // node_init::device: where the plan put this instance
  bool started_ = false;
  device_choice where_;
};

}  // namespace

kind_def monte_carlo_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "tool.monte_carlo";
  s.doc = "a tool that forecasts a year of revenue and profit by Monte Carlo simulation, on a GPU when there is one";
  s.params = {param_spec::string("device", "where to run: auto (a GPU if any, else the CPU), cpu or cuda")
                  .def("auto").one_of({"auto", "cpu", "cuda"})};
  s.call = monte_carlo_call();
  s.resources.gpus = 1;
  s.resources.cpu_fallback = true;
  s.blocking = true;
  return {std::move(s), [](const node_init& init) { return std::make_unique<monte_carlo>(init); }};
}

}  // namespace loom::actors
