// runtime/serve/capture.cpp: the per-request output channel, the slot table, serve.input and the captures.
#include "loom/runtime/serve/capture.hpp"

#include <fmt/format.h>

#include <numeric>
#include <stdexcept>
#include <utility>

#include "loom/runtime/serve/openai.hpp"

namespace loom::serve {

void output_channel::push(std::string text) {
  std::unique_lock lock{mutex_};
  if (abandoned_) return;
  if (mode_ == mode::whole) {
    if (overflow_) return;
    if (whole_.size() + (any_ ? 1 : 0) + text.size() > limit_) {
      overflow_ = true;
      return;
    }
    if (any_) whole_ += '\n';
    whole_ += text;
    any_ = true;
    return;
  }
  room_.wait(lock, [&] { return texts_.size() < limit_ || abandoned_; });
  if (abandoned_) return;
  texts_.push_back(std::move(text));
  lock.unlock();
  ready_.notify_all();
}

void output_channel::finish(end e) {
  {
    std::lock_guard lock{mutex_};
    end_ = std::move(e);
  }
  ready_.notify_all();
}

void output_channel::abandon() {
  {
    std::lock_guard lock{mutex_};
    abandoned_ = true;
    texts_.clear();
  }
  room_.notify_all();
}

bool output_channel::overflowed() const {
  std::lock_guard lock{mutex_};
  return overflow_;
}

std::string output_channel::take_whole() {
  std::lock_guard lock{mutex_};
  return std::move(whole_);
}

std::optional<std::string> output_channel::next() {
  std::unique_lock lock{mutex_};
  ready_.wait(lock, [&] { return !texts_.empty() || end_; });
  if (texts_.empty()) return std::nullopt;
  auto t = std::move(texts_.front());
  texts_.pop_front();
  lock.unlock();
  room_.notify_all();
  return t;
}

bool output_channel::wait_ready(std::chrono::milliseconds timeout) {
  std::unique_lock lock{mutex_};
  return ready_.wait_for(lock, timeout, [&] { return !texts_.empty() || end_; });
}

bool output_channel::has_value() const {
  std::lock_guard lock{mutex_};
  return !texts_.empty();
}

std::size_t output_channel::queued() const {
  std::lock_guard lock{mutex_};
  return texts_.size();
}

std::optional<output_channel::end> output_channel::ended() const {
  std::lock_guard lock{mutex_};
  return end_;
}

slot_table::slot_table(std::size_t slots) : requests_(slots), free_(slots) {
  // Handed out from the back: slot 0 first.
  std::iota(free_.rbegin(), free_.rend(), std::size_t{0});
}

std::optional<std::size_t> slot_table::acquire() {
  std::lock_guard lock{mutex_};
  if (free_.empty()) return std::nullopt;
  auto s = free_.back();
  free_.pop_back();
  return s;
}

void slot_table::release(std::size_t slot) {
  std::lock_guard lock{mutex_};
  requests_.at(slot).reset();
  free_.push_back(slot);
}

void slot_table::set(std::size_t slot, request r) {
  std::lock_guard lock{mutex_};
  requests_.at(slot) = std::move(r);
}

slot_table::request slot_table::get(std::size_t slot) const {
  std::lock_guard lock{mutex_};
  if (slot >= requests_.size() || !requests_[slot])
    throw std::runtime_error(fmt::format("no request is waiting in slot {} for this run", slot));
  return *requests_[slot];
}

namespace {

class input final : public node {
 public:
  explicit input(std::string prompt) : prompt_(std::move(prompt)) {}
  bool on_pull(context& ctx) override {
    if (ctx.budget() > 0) {
      ctx.emit(value{std::move(prompt_)});
      return false;
    }
    return true;
  }

 private:
  std::string prompt_;
};

class capture final : public node {
 public:
  explicit capture(std::shared_ptr<output_channel> ch) : channel_(std::move(ch)) {}
  // A streaming capture may wait for room (a slow client): a stopped run (SIGINT, another node's failure)
  // ends that wait at once; the request then gets the run's error.
  void on_start(context& ctx) override {
    if (channel_->kind() == output_channel::mode::stream) ctx.set_stop_hook([ch = channel_] { ch->abandon(); });
  }
  void on_message(context&, std::size_t, const value& v) override { channel_->push(answer_text(v)); }

 private:
  std::shared_ptr<output_channel> channel_;
};

graph::param_spec slot_param() {
  return graph::param_spec::integer("slot", "the server's slot whose request this run answers").require().at_least(0);
}

std::size_t slot_of(const node_init& init) { return static_cast<std::size_t>(init.params.get_int("slot")); }

kind_def make_capture(std::shared_ptr<slot_table> table, const char* name, bool blocking) {
  graph::kind_spec s;
  s.name = name;
  s.doc = blocking ? "streams each value's text to the served request, waiting while the client is behind"
                   : "hands each value's text to the served request (loom serve's output node)";
  s.inputs = {{"in", "the answer's values"}};
  s.params = {slot_param()};
  s.blocking = blocking;
  return {std::move(s), [table = std::move(table)](const node_init& init) -> std::unique_ptr<node> {
            return std::make_unique<capture>(table->get(slot_of(init)).channel);
          }};
}

}  // namespace

kind_def input_kind(std::shared_ptr<slot_table> table) {
  graph::kind_spec s;
  s.name = input_kind_name;
  s.doc = "emits the served request's prompt once (loom serve's input node)";
  s.outputs = {{"out", "the last user message, a string"}};
  s.params = {slot_param()};
  return {std::move(s), [table = std::move(table)](const node_init& init) -> std::unique_ptr<node> {
            return std::make_unique<input>(table->get(slot_of(init)).prompt);
          }};
}

kind_def capture_kind(std::shared_ptr<slot_table> table) {
  return make_capture(std::move(table), capture_kind_name, false);
}

kind_def stream_capture_kind(std::shared_ptr<slot_table> table) {
  return make_capture(std::move(table), stream_capture_kind_name, true);
}

}  // namespace loom::serve
