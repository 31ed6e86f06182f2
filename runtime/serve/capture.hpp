// runtime/serve/capture.hpp: how a served request gets the graph's answer. Each request owns an
// output_channel; the `serve.capture` kind (registered by the server in its own registry, never a built-in)
// stands in for the graph's output node and pushes every value it receives into the channel of the request
// named by its `request` param. The request's thread reads the channel as the values arrive.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "runtime/registry.hpp"
#include "runtime/value.hpp"

namespace loom::serve {

// A thread-safe queue of the values one run delivers, closed once the run has ended.
class output_channel {
 public:
  struct end {
    bool ok = true;
    std::string error;  // set when !ok
  };

  void push(value v);
  void finish(end e);

  // Waits for the next value; nullopt once the run has ended and every value was taken (then ended()
  // says how it ended).
  std::optional<value> next();
  // Waits until a value is queued or the run has ended; false on timeout.
  bool wait_ready(std::chrono::milliseconds timeout);
  bool has_value() const;
  std::optional<end> ended() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<value> values_;
  std::optional<end> end_;
};

// Request id -> channel, shared by the server's request threads and the capture nodes' actors.
class channel_table {
 public:
  // Registers `ch` under a fresh id.
  std::int64_t open(std::shared_ptr<output_channel> ch);
  void close(std::int64_t id);
  std::shared_ptr<output_channel> find(std::int64_t id) const;

 private:
  mutable std::mutex mutex_;
  std::int64_t next_ = 1;
  std::map<std::int64_t, std::shared_ptr<output_channel>> channels_;
};

inline constexpr const char* capture_kind_name = "serve.capture";

// serve.capture: a sink that hands each value to the channel `request` names in `table`.
//   inputs: in (any)
//   params: request (integer, required): the id from channel_table::open
kind_def capture_kind(std::shared_ptr<channel_table> table);

}  // namespace loom::serve
