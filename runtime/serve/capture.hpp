// runtime/serve/capture.hpp: how a served request reaches a ready run of the graph and gets its answer.
// The server expands the graph once per concurrency slot (runtime/serve/server.hpp); a slot's graph has
// `serve.input` in place of the input node and a capture kind in place of the output node, both naming the
// slot by their `slot` param. Before a request runs in a slot, the server puts the request's prompt and
// output channel in the slot_table; the nodes of that run find them there when they are made.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "loom/runtime/registry.hpp"
#include "loom/runtime/value.hpp"

namespace loom::serve {

// The answer of one request, as the capture node hands it over.
//  - whole: the values' texts joined with "\n", at most `limit` bytes; one more makes it overflowed() and
//    later values are dropped (the server then interrupts the run). push() never waits.
//  - stream: a queue of at most `limit` texts; push() waits while it is full (the capture node has its own
//    thread, so the wait holds back the graph through its credits), until the request takes one or
//    abandons the channel.
class output_channel {
 public:
  enum class mode { whole, stream };
  struct end {
    bool ok = true;
    std::string error;  // set when !ok
  };

  output_channel(mode m, std::size_t limit) : mode_(m), limit_(limit) {}
  mode kind() const { return mode_; }

  void push(std::string text);
  void finish(end e);
  // The request is gone (client away, run interrupted): push() stops waiting and drops what it is given.
  void abandon();

  // whole: whether the answer went past the limit, and the answer.
  bool overflowed() const;
  std::string take_whole();

  // stream: waits for the next text; nullopt once the run has ended and every text was taken (then
  // ended() says how it ended).
  std::optional<std::string> next();
  // Waits until a text is queued or the run has ended; false on timeout.
  bool wait_ready(std::chrono::milliseconds timeout);
  bool has_value() const;
  std::size_t queued() const;
  std::optional<end> ended() const;

 private:
  const mode mode_;
  const std::size_t limit_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;  // a text or the end arrived
  std::condition_variable room_;   // a text was taken, or the channel was abandoned
  std::deque<std::string> texts_;
  std::string whole_;
  bool any_ = false, overflow_ = false, abandoned_ = false;
  std::optional<end> end_;
};

// What the nodes of the run in slot i find: the request's prompt and its output channel.
class slot_table {
 public:
  struct request {
    std::string prompt;
    std::shared_ptr<output_channel> channel;
  };
  explicit slot_table(std::size_t slots);
  std::size_t size() const { return requests_.size(); }

  // A free slot, taken; nullopt when every slot is taken.
  std::optional<std::size_t> acquire();
  // Gives the slot back and forgets its request.
  void release(std::size_t slot);
  void set(std::size_t slot, request r);
  // The slot's request; throws std::runtime_error when none is set.
  request get(std::size_t slot) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::optional<request>> requests_;
  std::vector<std::size_t> free_;
};

inline constexpr const char* input_kind_name = "serve.input";
inline constexpr const char* capture_kind_name = "serve.capture";
inline constexpr const char* stream_capture_kind_name = "serve.capture_stream";

// serve.input: a source that emits its slot's prompt (a string) once.
//   outputs: out; params: slot (integer, required)
kind_def input_kind(std::shared_ptr<slot_table> table);
// serve.capture: a sink that hands each value's answer text to its slot's channel (whole mode).
// serve.capture_stream: the same, blocking (its own thread), for stream channels that make it wait.
//   inputs: in (any); params: slot (integer, required)
kind_def capture_kind(std::shared_ptr<slot_table> table);
kind_def stream_capture_kind(std::shared_ptr<slot_table> table);

}  // namespace loom::serve
