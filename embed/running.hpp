// embed/running.hpp: a graph the program keeps running (runtime::start) and talks to through its
// `program.input` and `program.output` nodes: typed handles with backpressure the program sees.
//
//   auto run = rt.start(g);                       // g has program.input `in` and program.output `out`
//   auto in = run.input<std::int64_t>("in");
//   auto out = run.output<std::string>("out");
//   in.push(42, 1s);                              // false when `in` is still full after 1 s
//   in.close();                                   // no more values: the graph drains and ends
//   while (auto s = out.take(5s)) use(*s);        // nullopt once the run ended ok and `out` is empty
//   auto report = run.wait();
//
// Each program.input holds up to its `capacity` values (a param, default 64) that the graph has not yet
// taken: push() blocks while it is full, try_push() says so at once. Each program.output holds up to its
// `capacity` values the program has not taken; while it is full the graph waits (its edges' credits run
// out, and so on back to the inputs). Nothing is dropped: a value pushed is in the run until it reaches an
// output or the run fails.
// When the run has ended (failed, interrupted, or ok with values pushed after close()), push and take
// throw loom::run_error with the report's error. Handles may be used from any thread; each is a cheap
// copyable reference that stays valid after the `running` is gone (its calls then throw run_error).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "loom/embed/convert.hpp"
#include "loom/graph/graph.hpp"
#include "loom/runtime/run_report.hpp"
#include "loom/runtime/value.hpp"

namespace loom {

namespace embed {
struct channel;
struct run_handle;
}  // namespace embed

// A run ended while the program was feeding it or waiting for it: what() is the report's error (or
// "interrupted"), report() the whole report.
class run_error : public std::runtime_error {
 public:
  run_error(std::string what, std::shared_ptr<const run_report> report)
      : std::runtime_error(std::move(what)), report_(std::move(report)) {}
  // Null when the run had not ended yet (a handle used after its run was dropped).
  const run_report* report() const { return report_.get(); }

 private:
  std::shared_ptr<const run_report> report_;
};

// A wait of the program's that reached its deadline (output::take).
class timeout_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Untyped handles (values as loom::value); input<T> and output<T> below convert.
class input_port {
 public:
  // Adds `v` unless the input holds `capacity` values already: then false, at once.
  bool try_push(value v);
  // Adds `v`, waiting up to `timeout` for room; false when there was none by then.
  bool push(value v, std::chrono::milliseconds timeout);
  // No more values: once the graph has taken what is queued, this input's stream ends. Idempotent.
  void close();
  std::size_t size() const;  // values queued now
  std::size_t capacity() const;
  const std::string& node() const;

 private:
  friend class running;
  explicit input_port(std::shared_ptr<embed::channel> c) : c_(std::move(c)) {}
  std::shared_ptr<embed::channel> c_;
};

class output_port {
 public:
  // The next value, waiting up to `timeout`; nullopt once the run has ended ok and every value was taken.
  // Throws timeout_error at the deadline, run_error when the run failed or was stopped (values queued
  // before that are still handed out first).
  std::optional<value> take(std::chrono::milliseconds timeout);
  // The next value if one is there now, else nullopt (see ended()).
  std::optional<value> try_take();
  // True once the run has ended and every value was taken.
  bool ended() const;
  std::size_t size() const;
  const std::string& node() const;

 private:
  friend class running;
  explicit output_port(std::shared_ptr<embed::channel> c) : c_(std::move(c)) {}
  std::shared_ptr<embed::channel> c_;
};

template <class T>
class input {
 public:
  explicit input(input_port p) : p_(std::move(p)) {}
  bool try_push(const T& x) { return p_.try_push(convert<T>::to(x)); }
  bool push(const T& x, std::chrono::milliseconds timeout) { return p_.push(convert<T>::to(x), timeout); }
  void close() { p_.close(); }
  std::size_t size() const { return p_.size(); }
  std::size_t capacity() const { return p_.capacity(); }
  const input_port& port() const { return p_; }

 private:
  input_port p_;
};

template <class T>
class output {
 public:
  explicit output(output_port p) : p_(std::move(p)) {}
  // As output_port::take; a value that does not convert to T throws loom::type_error.
  std::optional<T> take(std::chrono::milliseconds timeout) { return as(p_.take(timeout)); }
  std::optional<T> try_take() { return as(p_.try_take()); }
  bool ended() const { return p_.ended(); }
  const output_port& port() const { return p_; }

 private:
  static std::optional<T> as(std::optional<value> v) {
    if (!v) return std::nullopt;
    return convert<T>::from(*v);
  }
  output_port p_;
};

class running {
 public:
  running(running&&) noexcept;
  running& operator=(running&&) noexcept;
  // Stops the run if it is still going (interrupted) and waits for it.
  ~running();

  // The handle of program.input / program.output node `node`; throws std::invalid_argument naming the
  // node when the graph has no such node of that kind.
  input_port input_port_of(std::string_view node) const;
  output_port output_port_of(std::string_view node) const;
  template <class T = value>
  loom::input<T> input(std::string_view node) const { return loom::input<T>(input_port_of(node)); }
  template <class T = value>
  loom::output<T> output(std::string_view node) const { return loom::output<T>(output_port_of(node)); }

  // Blocks until the run ends; returns its report (also after the first call).
  const run_report& wait();
  // The report if the run ends within `timeout`, else nullptr.
  const run_report* wait_for(std::chrono::milliseconds timeout);
  bool done() const;
  // Stops the run now: sources stop, sinks flush, the report says interrupted. Returns at once.
  void stop();
  const graph::graph& graph() const;

 private:
  friend class runtime;
  explicit running(std::shared_ptr<embed::run_handle> h) : h_(std::move(h)) {}
  std::shared_ptr<embed::run_handle> h_;
};

}  // namespace loom
