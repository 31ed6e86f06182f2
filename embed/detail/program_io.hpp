// embed/detail/program_io.hpp (internal): the queues between a program and its running graph, and the two
// kinds that hold their graph end: program.input (a source that emits what the program pushes) and
// program.output (a sink that queues what reaches it for the program to take). Both block (threads of
// their own): the input waits for the program's values, the output waits for room.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "loom/runtime/registry.hpp"
#include "loom/runtime/run_report.hpp"
#include "loom/runtime/value.hpp"

namespace loom::embed {

struct channel {
  channel(std::string n, std::size_t cap, bool in) : node(std::move(n)), capacity(cap), is_input(in) {}
  const std::string node;
  const std::size_t capacity;
  const bool is_input;

  mutable std::mutex m;
  std::condition_variable changed;  // every change below; waiters re-check their own condition
  std::deque<value> q;
  bool closed = false;  // input: the program closed it; output: its node finished
  bool ended = false;   // the run is over
  std::shared_ptr<const run_report> report;  // set with `ended`

  // Marks the run over and wakes every waiter.
  void end(std::shared_ptr<const run_report> r);
  // Throws run_error for a run that is over (the caller holds `m`).
  [[noreturn]] void throw_ended() const;
};

// The channels of one run, by node name.
struct channels {
  std::map<std::string, std::shared_ptr<channel>, std::less<>> inputs, outputs;
};

// The kinds as validation sees them (registered with the built-ins): their factories refuse to run,
// because only runtime::start binds them to a program.
kind_def unbound_input_kind();
kind_def unbound_output_kind();
// The same kinds bound to one run's channels.
kind_def input_kind(std::shared_ptr<channels> bound);
kind_def output_kind(std::shared_ptr<channels> bound);

inline constexpr const char* input_kind_name = "program.input";
inline constexpr const char* output_kind_name = "program.output";

}  // namespace loom::embed
