// examples/embed/main.cpp: a program that embeds loom. It builds a graph in C++, adds a kind of its own,
// runs one graph to the end, then keeps a second one running while it pushes orders in and takes priced
// orders out, and checks what it got. Exit status 0 when every check holds.
#include <loom/loom.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;

// The program's own type, carried as a loom map through loom::convert.
struct order {
  std::int64_t id = 0;
  double amount = 0;
  double total = 0;  // amount with tax, set by shop.price
};

template <>
struct loom::convert<order> {
  static loom::value to(const order& o) {
    return loom::value_map{{"id", o.id}, {"amount", o.amount}, {"total", o.total}};
  }
  static order from(const loom::value& v) {
    return {v.find("id")->as_int(), v.find("amount")->as_float(), v.find("total")->as_float()};
  }
};

// shop.price: adds `tax_percent` to each order's amount; refuses a negative amount (the run fails, naming
// the node and the order).
loom::kind_def price_kind() {
  using loom::graph::param_spec;
  loom::graph::kind_spec spec;
  spec.name = "shop.price";
  spec.doc = "sets each order's total: its amount with tax";
  spec.inputs = {{"in", "orders {id, amount}"}};
  spec.outputs = {{"out", "orders {id, amount, total}"}};
  spec.params = {param_spec::floating("tax_percent", "tax added to the amount").def(20.0).at_least(0)};

  class price final : public loom::node {
   public:
    explicit price(double tax) : factor_(1 + tax / 100) {}
    void on_message(loom::context& ctx, std::size_t, const loom::value& v) override {
      auto o = loom::convert<order>::from(v);
      if (o.amount < 0) throw std::invalid_argument("order " + std::to_string(o.id) + ": negative amount");
      o.total = std::round(o.amount * factor_ * 100) / 100;
      ctx.emit(loom::convert<order>::to(o));
    }

   private:
    double factor_;
  };
  return {std::move(spec), [](const loom::node_init& init) {
            return std::make_unique<price>(init.params.get_float("tax_percent"));
          }};
}

int check(bool ok, const char* what) {
  std::fprintf(stderr, "%s: %s\n", ok ? "ok  " : "FAIL", what);
  return ok ? 0 : 1;
}

int main() {
  std::fprintf(stderr, "loom %s (headers %s)\n", loom::version(), LOOM_VERSION_STRING);
  loom::runtime rt({.threads = 2});
  rt.kinds().add(price_kind());
  int failures = 0;

  // 1. A graph run to the end: 1,000 numbers through a built-in kind, counted by a sink that checks.
  {
    loom::graph::builder b("numbers");
    b.node("src", "source.sequence").param("count", 1000);
    b.node("fwd", "flow.forward");
    b.node("count", "sink.count").param("expect", 1000);
    b.chain({"src", "fwd", "count"});
    auto report = rt.run(b.build());
    failures += check(report.ok(), "a built graph runs to the end and its sink saw 1,000 values");
  }

  // 2. A mistake in the graph is an exception naming the place in this file.
  try {
    loom::graph::builder b("typo");
    b.node("src", "source.sequence").param("count", 3);
    b.node("out", "sink.cuont");
    b.chain({"src", "out"});
    rt.run(b.build());
    failures += check(false, "an unknown kind is refused");
  } catch (const loom::graph_error& e) {
    failures += check(std::string(e.what()).find("did you mean `sink.count`") != std::string::npos,
                      "an unknown kind is refused with a suggestion");
  }

  // 3. A graph kept running: orders pushed in by one thread, priced by the program's kind, taken out here.
  loom::graph::builder b("shop");
  b.node("orders", "program.input").param("capacity", 16);
  b.node("price", "shop.price").param("tax_percent", 10.0);
  b.node("priced", "program.output").param("capacity", 16);
  b.chain({"orders", "price", "priced"});
  auto run = rt.start(b.build());
  auto in = run.input<order>("orders");
  auto out = run.output<order>("priced");
  constexpr int n = 10'000;
  std::thread feeder([&] {
    for (int i = 0; i < n; ++i)
      if (!in.push(order{i, 1.0 + i % 100}, 10s)) throw std::runtime_error("push: no room within 10 s");
    in.close();
  });
  int taken = 0;
  bool in_order = true, priced = true;
  while (auto o = out.take(10s)) {
    in_order = in_order && o->id == taken;
    priced = priced && std::abs(o->total - std::round(o->amount * 110) / 100) < 1e-9;
    ++taken;
  }
  feeder.join();
  const auto& report = run.wait();
  failures += check(report.ok(), "the running graph ended ok once its input was closed");
  failures += check(taken == n, "every order pushed came out");
  failures += check(in_order && priced, "in order, each priced by shop.price");

  // 4. A failure inside the running graph reaches the program, naming the node and the reason.
  auto bad = rt.start(b.build());
  auto bad_in = bad.input<order>("orders");
  bad_in.push(order{1, -5}, 10s);
  try {
    bad.output<order>("priced").take(10s);
    failures += check(false, "a failing node stops the run");
  } catch (const loom::run_error& e) {
    failures += check(std::string(e.what()).find("negative amount") != std::string::npos &&
                          std::string(e.what()).find("price") != std::string::npos,
                      "a failing node's error reaches the program (node and reason)");
  }
  std::fprintf(stderr, "%s\n", failures == 0 ? "all checks passed" : "some checks FAILED");
  return failures == 0 ? 0 : 1;
}
