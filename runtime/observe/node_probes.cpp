// runtime/observe/node_probes.cpp: one node instance's probe (runtime/local/probes.hpp): a tool meter made
// at its first served call, and its span buffer in a traced run (spans are plain structs appended by the
// instance's own thread).
#include "loom/runtime/observe/node_probes.hpp"

#include <optional>

namespace loom::observe {
namespace {

class instance_probe final : public local::instance_probe {
 public:
  instance_probe(span_buffer* spans, registry& r) : spans_(spans), registry_(r) {}

  void served(const std::string& tool, bool ok, double seconds) override {
    if (!meter_) meter_.emplace(tool, registry_);  // an instance serves one tool: itself
    meter_->record(ok, seconds);
  }
  void rejected(const std::string& tool) override { count_tool_call(tool, "rejected", registry_); }
  void timed_out(const std::string& tool) override { count_tool_call(tool, "timeout", registry_); }

  span_buffer* spans() override { return spans_; }
  std::uint64_t new_span() override { return spans_->new_id(); }
  std::uint64_t current() const override { return spans_->current; }
  void set_current(std::uint64_t span) override { spans_->current = span; }

  void slice(std::uint64_t id, local::probe_clock::time_point t0, local::probe_clock::time_point t1,
             std::uint64_t handled, std::uint64_t pulled) override {
    spans_->current = 0;
    if (handled == 0 && pulled == 0) return;
    span s;
    s.id = id;
    s.kind = handled > 0 ? span_kind::batch : span_kind::pull;
    s.track = spans_->track();
    s.start_ns = spans_->unix_ns(t0);
    s.end_ns = spans_->unix_ns(t1);
    s.count = static_cast<std::int64_t>(handled > 0 ? handled : pulled - 1);
    spans_->add(std::move(s));
  }

  void call_span(std::uint64_t id, std::uint64_t parent, local::probe_clock::time_point start,
                 const std::string& tool, bool ok, const std::string& error) override {
    span s;
    s.id = id;
    s.parent = parent;
    s.kind = span_kind::call;
    s.track = spans_->track();
    s.start_ns = spans_->unix_ns(start);
    s.end_ns = spans_->now_ns();
    s.name = "call " + tool;
    s.attrs.push_back({"loom.tool", tool});
    if (!ok) s.attrs.push_back({"loom.error", error});
    s.error = !ok;
    spans_->add(std::move(s));
    spans_->current = parent;
  }

  void served_span(std::uint64_t id, std::uint64_t parent, local::probe_clock::time_point t0,
                   local::probe_clock::time_point t1, const std::string& tool, bool ok,
                   const std::string& error) override {
    span s;
    s.id = id;
    s.parent = parent;
    s.kind = span_kind::tool;
    s.track = spans_->track();
    s.start_ns = spans_->unix_ns(t0);
    s.end_ns = spans_->unix_ns(t1);
    s.name = "tool " + tool;
    if (!ok) s.attrs.push_back({"loom.error", error});
    s.error = !ok;
    spans_->add(std::move(s));
  }

 private:
  span_buffer* spans_;
  registry& registry_;
  std::optional<tool_meter> meter_;
};

}  // namespace

node_probes::node_probes(std::shared_ptr<tracer> trace, registry& r)
    : trace_(std::move(trace)), registry_(r) {}

std::unique_ptr<local::instance_probe> node_probes::instance(std::uint32_t index, std::string name) {
  auto* spans = trace_ ? &trace_->buffer(index, std::move(name)) : nullptr;
  return std::make_unique<instance_probe>(spans, registry_);
}

std::shared_ptr<local::run_probes> probes_for(std::shared_ptr<tracer> trace) {
  return std::make_shared<node_probes>(std::move(trace));
}

}  // namespace loom::observe
