// python/src/gil.hpp: waiting in loom._loom without the GIL. Every call that may wait (a run, a push, a take,
// a server's stop) releases it, and polls for signals (Ctrl-C: KeyboardInterrupt) every 100 ms on the calling
// thread, stopping what it waits for before it raises; a thread that would take the GIL back while the
// interpreter shuts down parks instead. Used by the handles (runs.cpp) and the runtime (module.cpp).
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "kinds.hpp"

namespace loom::python {

using namespace std::chrono_literals;

constexpr auto slice = 100ms;  // how often a wait looks for signals

// The GIL released for a scope, as pybind11's gil_scoped_release, except that the thread parks instead of
// taking the GIL back once the interpreter has begun to shut down (see without_gil below).
class safe_release {
 public:
  safe_release() : saved_(PyEval_SaveThread()) {}
  ~safe_release() {
    if (!interpreter_alive())
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    PyEval_RestoreThread(saved_);
  }
  safe_release(const safe_release&) = delete;
  safe_release& operator=(const safe_release&) = delete;

 private:
  PyThreadState* saved_;
};

// Runs `f` with the GIL released, and takes the GIL back unless the interpreter has begun to shut down.
// CPython ends a thread that takes the GIL during finalization with pthread_exit, whose unwinding through a
// destructor (pybind11's gil_scoped_release takes it back in one) is std::terminate: a daemon thread
// waiting for a run at exit would abort the process. Such a thread parks instead; the process is exiting.
template <class F>
auto without_gil(F&& f) {
  PyThreadState* saved = PyEval_SaveThread();
  auto take_back = [saved] {
    if (!interpreter_alive())
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    PyEval_RestoreThread(saved);
  };
  try {
    auto r = f();
    take_back();
    return r;
  } catch (...) {
    take_back();
    throw;
  }
}

// Waits with the GIL released until `wait_for(slice)` says done, checking for signals between slices; when
// a signal handler raises (KeyboardInterrupt), calls stop(), waits for the end, and raises that exception.
template <class WaitFor, class Stop>
void wait_with_signals(WaitFor wait_for, Stop stop, std::optional<std::chrono::steady_clock::time_point> deadline = {}) {
  for (;;) {
    auto step = std::chrono::duration_cast<std::chrono::milliseconds>(slice);
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return;
      step = std::min(step, left);
    }
    bool done = without_gil([&] { return wait_for(step); });
    if (done) return;
    if (PyErr_CheckSignals() != 0) {
      without_gil([&] {
        stop();
        while (!wait_for(slice)) {
        }
        return true;
      });
      throw py::error_already_set();
    }
  }
}

// Drops what it holds with the GIL released: its threads may be waiting for the GIL (Python kinds).
template <class T>
void drop_without_gil(std::unique_ptr<T>& x) {
  if (!x) return;
  if (!interpreter_alive()) {
    (void)x.release();  // leaked: at exit no thread of its may take the GIL again
    return;
  }
  safe_release nogil;
  x.reset();
}

}  // namespace loom::python
