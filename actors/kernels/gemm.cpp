// kernel.gemm: multiplies the two matrices of each input: out = alpha * a * b (+ beta * c when c is given).
//   inputs:  in (a map {a: tensor, b: tensor, c?: tensor} or a list [a, b] / [a, b, c]; f32 matrices)
//   outputs: out (the product tensor: on the GPU the node runs on, or in host memory on the CPU path)
//   params:  device (string auto|cpu|cuda, default auto), alpha (floating, default 1), beta (floating, default 0)
//   resources: gpus 1, cpu_fallback (no GPU: the CPU path, and a log line that says so)
// On a GPU the product stays there, so a next kernel actor on that GPU takes it without a host copy; a sink
// that needs host data calls kernels::to_host().
#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>

#include "loom/actors/kernels/device_choice.hpp"
#include "loom/actors/kinds.hpp"
#include "loom/kernels/gemm/gemm.hpp"

namespace loom::actors {
namespace {

class gemm_node final : public node {
 public:
  explicit gemm_node(const node_init& init)
      : name_(init.name), asked_(init.params.get_string("device")), instance_(init.instance), planned_(init.device) {
    opt_.alpha = static_cast<float>(init.params.get_float("alpha"));
    opt_.beta = static_cast<float>(init.params.get_float("beta"));
  }

  void on_start(context& ctx) override {
    where_ = choose_device(asked_, instance_, planned_);
    opt_.device = where_.device;
    if (where_.device >= 0) opt_.blas = &blas_.emplace(where_.device);
    if (where_.device < 0)
      spdlog::info("node={} kind=kernel.gemm device=cpu: running the CPU path ({})", name_, where_.why);
    else
      spdlog::info("node={} kind=kernel.gemm device={}", name_, where_.name());
  }

  void on_message(context& ctx, std::size_t, const value& v) override {
    auto [a, b, c] = operands(v);
    ctx.emit(0, value(kernels::gemm(a, b, opt_, c)));
  }

 private:
  static std::tuple<tensor, tensor, std::optional<tensor>> operands(const value& v) {
    auto need = [](const value* x, const char* what) -> const tensor& {
      if (x == nullptr) throw std::invalid_argument(std::string("kernel.gemm: the input has no `") + what + "`");
      if (!x->is_tensor())
        throw std::invalid_argument(std::string("kernel.gemm: `") + what + "` must be a tensor, found " + x->type_name());
      return x->as_tensor();
    };
    if (v.is_map()) {
      const value* c = v.find("c");
      return {need(v.find("a"), "a"), need(v.find("b"), "b"),
              c ? std::optional<tensor>(need(c, "c")) : std::nullopt};
    }
    if (v.is_list() && (v.as_list().size() == 2 || v.as_list().size() == 3)) {
      const auto& l = v.as_list();
      return {need(&l[0], "a"), need(&l[1], "b"), l.size() == 3 ? std::optional<tensor>(need(&l[2], "c")) : std::nullopt};
    }
    throw std::invalid_argument(std::string("kernel.gemm: expected a map {a, b} or a list [a, b], found ") + v.type_name());
  }

  std::string name_;
  std::string asked_;
  int instance_;
  int planned_;  // node_init::device: where the plan put this instance
  device_choice where_;
  kernels::gemm_options opt_;
  std::optional<kernels::blas_handle> blas_;
};

}  // namespace

kind_def gemm_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "kernel.gemm";
  s.doc = "multiplies f32 matrices: out = alpha * a * b (+ beta * c), on a GPU when there is one";
  s.inputs = {{"in", "a map {a, b, c?} or a list [a, b, c?] of f32 matrices"}};
  s.outputs = {{"out", "the product tensor (on the node's GPU, or in host memory on the CPU path)"}};
  s.params = {param_spec::string("device", "where to run: auto (a GPU if any, else the CPU), cpu or cuda")
                  .def(std::string("auto")).one_of({"auto", "cpu", "cuda"}),
              param_spec::floating("alpha", "scale of a * b").def(1.0),
              param_spec::floating("beta", "scale of the input c (ignored without c)").def(0.0)};
  s.resources.gpus = 1;
  s.resources.cpu_fallback = true;
  s.blocking = true;
  return {std::move(s), [](const node_init& init) { return std::make_unique<gemm_node>(init); }};
}

}  // namespace loom::actors
