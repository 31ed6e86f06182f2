// tests/transport/collector.hpp: endpoint callbacks that queue what arrives, and waits with a deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "loom/runtime/transport/endpoint.hpp"

namespace loom::test {

// Endpoint and connect settings in one call (designated initializers would warn about the other fields).
inline transport::endpoint_config config(std::string name, std::optional<transport::curve_keypair> curve = {},
                                         std::vector<std::string> allowed_clients = {}) {
  transport::endpoint_config c;
  c.name = std::move(name);
  c.curve = std::move(curve);
  c.allowed_clients = std::move(allowed_clients);
  return c;
}
inline transport::connect_options connecting(std::string server_key = {},
                                             std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  transport::connect_options o;
  o.server_key = std::move(server_key);
  o.timeout = timeout;
  return o;
}

class collector {
 public:
  transport::endpoint_callbacks callbacks() {
    return {[this](transport::incoming&& in) { push(messages_, std::move(in)); },
            [this](const transport::problem& p) { push(problems_, p); }};
  }
  std::optional<transport::incoming> next_message(std::chrono::milliseconds within = std::chrono::seconds(10)) {
    return pop(messages_, within);
  }
  std::optional<transport::problem> next_problem(std::chrono::milliseconds within = std::chrono::seconds(10)) {
    return pop(problems_, within);
  }

 private:
  template <class T>
  void push(std::deque<T>& q, T x) {
    {
      std::lock_guard lock(mu_);
      q.push_back(std::move(x));
    }
    cv_.notify_all();
  }
  template <class T>
  std::optional<T> pop(std::deque<T>& q, std::chrono::milliseconds within) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, within, [&] { return !q.empty(); })) return std::nullopt;
    T x = std::move(q.front());
    q.pop_front();
    return x;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<transport::incoming> messages_;
  std::deque<transport::problem> problems_;
};

}  // namespace loom::test
