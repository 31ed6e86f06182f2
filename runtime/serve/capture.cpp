// runtime/serve/capture.cpp: the per-request output channel, the channel table and serve.capture.
#include "runtime/serve/capture.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

namespace loom::serve {

void output_channel::push(value v) {
  {
    std::lock_guard lock{mutex_};
    values_.push_back(std::move(v));
  }
  ready_.notify_all();
}

void output_channel::finish(end e) {
  {
    std::lock_guard lock{mutex_};
    end_ = std::move(e);
  }
  ready_.notify_all();
}

std::optional<value> output_channel::next() {
  std::unique_lock lock{mutex_};
  ready_.wait(lock, [&] { return !values_.empty() || end_; });
  if (values_.empty()) return std::nullopt;
  auto v = std::move(values_.front());
  values_.pop_front();
  return v;
}

bool output_channel::wait_ready(std::chrono::milliseconds timeout) {
  std::unique_lock lock{mutex_};
  return ready_.wait_for(lock, timeout, [&] { return !values_.empty() || end_; });
}

bool output_channel::has_value() const {
  std::lock_guard lock{mutex_};
  return !values_.empty();
}

std::optional<output_channel::end> output_channel::ended() const {
  std::lock_guard lock{mutex_};
  return end_;
}

std::int64_t channel_table::open(std::shared_ptr<output_channel> ch) {
  std::lock_guard lock{mutex_};
  auto id = next_++;
  channels_.emplace(id, std::move(ch));
  return id;
}

void channel_table::close(std::int64_t id) {
  std::lock_guard lock{mutex_};
  channels_.erase(id);
}

std::shared_ptr<output_channel> channel_table::find(std::int64_t id) const {
  std::lock_guard lock{mutex_};
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : it->second;
}

namespace {

class capture final : public node {
 public:
  explicit capture(std::shared_ptr<output_channel> ch) : channel_(std::move(ch)) {}
  void on_message(context& ctx, std::size_t port, const value& v) override { channel_->push(v); }

 private:
  std::shared_ptr<output_channel> channel_;
};

}  // namespace

kind_def capture_kind(std::shared_ptr<channel_table> table) {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = capture_kind_name;
  s.doc = "hands each value to the served request (loom serve's output node)";
  s.inputs = {{"in", "the answer's values"}};
  s.params = {param_spec::integer("request", "the request's channel id").require().at_least(0)};
  return {std::move(s), [table = std::move(table)](const node_init& init) -> std::unique_ptr<node> {
            auto id = init.params.get_int("request");
            auto ch = table->find(id);
            if (!ch) throw std::runtime_error(fmt::format("no request {} is waiting for this run's output", id));
            return std::make_unique<capture>(std::move(ch));
          }};
}

}  // namespace loom::serve
