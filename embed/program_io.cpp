// embed/program_io.cpp: program.input and program.output, and the handles a program holds to them.
#include "loom/embed/detail/program_io.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "loom/embed/running.hpp"

namespace loom::embed {

using namespace std::chrono_literals;

void channel::end(std::shared_ptr<const run_report> r) {
  std::lock_guard lock(m);
  ended = true;
  report = std::move(r);
  changed.notify_all();
}

void channel::throw_ended() const {
  std::string why;
  if (!report) why = fmt::format("`{}`: the run was dropped", node);
  else if (report->result == run_report::outcome::failed) why = report->error;
  else if (report->result == run_report::outcome::interrupted) why = "the run was interrupted";
  else why = fmt::format("`{}`: the run has ended", node);
  throw run_error(why, report);
}

namespace {

// How long a node waits before it looks at ctx.stopping() again (a stop also wakes it through its hook).
constexpr auto recheck = 100ms;

void wake_on_stop(context& ctx, const std::shared_ptr<channel>& c) {
  ctx.set_stop_hook([c] {
    std::lock_guard lock(c->m);
    c->changed.notify_all();
  });
}

class input_node final : public node {
 public:
  explicit input_node(std::shared_ptr<channel> c) : c_(std::move(c)) {}
  void on_start(context& ctx) override { wake_on_stop(ctx, c_); }
  bool on_pull(context& ctx) override {
    batch_.clear();
    bool done = false;
    {
      std::unique_lock lock(c_->m);
      c_->changed.wait_for(lock, recheck, [&] { return !c_->q.empty() || c_->closed || ctx.stopping(); });
      auto n = std::min(c_->q.size(), ctx.budget());
      for (std::size_t i = 0; i < n; ++i) {
        batch_.push_back(std::move(c_->q.front()));
        c_->q.pop_front();
      }
      if (n > 0) c_->changed.notify_all();  // room for a waiting push
      done = c_->closed && c_->q.empty();
    }
    if (!batch_.empty()) ctx.emit_run(0, batch_);
    return !done && !ctx.stopping();
  }

 private:
  std::shared_ptr<channel> c_;
  std::vector<value> batch_;
};

class output_node final : public node {
 public:
  explicit output_node(std::shared_ptr<channel> c) : c_(std::move(c)) {}
  void on_start(context& ctx) override { wake_on_stop(ctx, c_); }
  void on_message(context& ctx, std::size_t, const value& v) override {
    std::unique_lock lock(c_->m);
    while (c_->q.size() >= c_->capacity) {
      if (ctx.stopping()) return;  // the run is being stopped: the report says interrupted or failed
      c_->changed.wait_for(lock, recheck);
    }
    c_->q.push_back(v);
    c_->changed.notify_all();
  }
  void on_finish(context&) override {
    std::lock_guard lock(c_->m);
    c_->closed = true;
    c_->changed.notify_all();
  }

 private:
  std::shared_ptr<channel> c_;
};

// program.input and program.output declare the same param; they differ in their port and their doc.
graph::kind_spec io_spec(bool input) {
  graph::kind_spec s;
  s.name = input ? input_kind_name : output_kind_name;
  s.doc = input ? "the values a program pushes into a running graph (runtime::start; docs/embedding.md)"
                : "the values a program takes from a running graph (runtime::start; docs/embedding.md)";
  if (input) s.outputs = {{"out", "each value pushed, in order"}};
  else s.inputs = {{"in", "any values"}};
  s.params = {graph::param_spec::integer("capacity", input ? "values the program may push before push() waits"
                                                           : "values not yet taken before the graph waits")
                  .def(64)
                  .at_least(1)};
  s.blocking = true;
  // One example for both: a graph a program feeds (runtime::start).
  s.example = R"yaml(graph: fed
nodes:
  orders: {kind: program.input, params: {capacity: 16}}
  big: {kind: flow.jq, params: {program: 'select(.total > 100)'}}
  priced: {kind: program.output, params: {capacity: 16}}
edges:
  - orders -> big -> priced
)yaml";
  return s;
}
graph::kind_spec input_spec() { return io_spec(true); }
graph::kind_spec output_spec() { return io_spec(false); }

std::shared_ptr<channel> bound(const std::map<std::string, std::shared_ptr<channel>, std::less<>>& table,
                               const std::string& name, const char* kind) {
  auto it = table.find(name);
  if (it == table.end()) throw std::logic_error(fmt::format("{} `{}` is not bound to the program", kind, name));
  return it->second;
}

}  // namespace

kind_def unbound_input_kind() {
  return {input_spec(), [](const node_init& n) -> std::unique_ptr<node> {
            throw std::runtime_error(fmt::format(
                "program.input `{}` takes values from a program: run the graph with runtime::start()", n.name));
          }};
}

kind_def unbound_output_kind() {
  return {output_spec(), [](const node_init& n) -> std::unique_ptr<node> {
            throw std::runtime_error(fmt::format(
                "program.output `{}` hands values to a program: run the graph with runtime::start()", n.name));
          }};
}

kind_def input_kind(std::shared_ptr<channels> table) {
  return {input_spec(), [table](const node_init& n) -> std::unique_ptr<node> {
            return std::make_unique<input_node>(bound(table->inputs, n.name, input_kind_name));
          }};
}

kind_def output_kind(std::shared_ptr<channels> table) {
  return {output_spec(), [table](const node_init& n) -> std::unique_ptr<node> {
            return std::make_unique<output_node>(bound(table->outputs, n.name, output_kind_name));
          }};
}

}  // namespace loom::embed

namespace loom {

using embed::channel;

bool input_port::try_push(value v) {
  std::lock_guard lock(c_->m);
  if (c_->ended) c_->throw_ended();
  if (c_->closed) throw std::logic_error(fmt::format("program.input `{}` is closed", c_->node));
  if (c_->q.size() >= c_->capacity) return false;
  c_->q.push_back(std::move(v));
  c_->changed.notify_all();
  return true;
}

bool input_port::push(value v, std::chrono::milliseconds timeout) {
  std::unique_lock lock(c_->m);
  c_->changed.wait_for(lock, timeout, [&] { return c_->ended || c_->closed || c_->q.size() < c_->capacity; });
  if (c_->ended) c_->throw_ended();
  if (c_->closed) throw std::logic_error(fmt::format("program.input `{}` is closed", c_->node));
  if (c_->q.size() >= c_->capacity) return false;
  c_->q.push_back(std::move(v));
  c_->changed.notify_all();
  return true;
}

void input_port::close() {
  std::lock_guard lock(c_->m);
  c_->closed = true;
  c_->changed.notify_all();
}

std::size_t input_port::size() const {
  std::lock_guard lock(c_->m);
  return c_->q.size();
}
std::size_t input_port::capacity() const { return c_->capacity; }
const std::string& input_port::node() const { return c_->node; }

namespace {
// The caller holds c.m. A value if one is queued; nullopt when the run ended ok and everything was taken;
// throws when it ended otherwise (failed, interrupted: a stop finishes the output node too, so its end
// alone does not say the stream is whole). `have` is false when there is nothing to say yet.
std::optional<value> next(channel& c, bool& have) {
  have = true;
  if (!c.q.empty()) {
    auto v = std::move(c.q.front());
    c.q.pop_front();
    c.changed.notify_all();
    return v;
  }
  if (c.ended) {
    if (c.report && c.report->result == run_report::outcome::ok) return std::nullopt;
    c.throw_ended();
  }
  have = false;
  return std::nullopt;
}
}  // namespace

std::optional<value> output_port::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(c_->m);
  c_->changed.wait_for(lock, timeout, [&] { return !c_->q.empty() || c_->ended; });
  bool have = false;
  auto v = next(*c_, have);
  if (!have)
    throw timeout_error(fmt::format("program.output `{}`: no value within {} ms", c_->node, timeout.count()));
  return v;
}

std::optional<value> output_port::try_take() {
  std::lock_guard lock(c_->m);
  bool have = false;
  return next(*c_, have);
}

bool output_port::ended() const {
  std::lock_guard lock(c_->m);
  return c_->q.empty() && c_->ended;
}

std::size_t output_port::size() const {
  std::lock_guard lock(c_->m);
  return c_->q.size();
}
const std::string& output_port::node() const { return c_->node; }

}  // namespace loom
