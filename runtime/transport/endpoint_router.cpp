// runtime/transport/endpoint_router.cpp: the router side of the endpoint's I/O thread: the one socket this
// process binds (sockets.hpp), the ZAP handler that answers its curve server (zap.hpp), the handshake
// refusals its monitor reports (monitor.hpp), and flushing replies and credits to named peers, parking what
// waits for a peer that is reconnecting.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <unordered_set>

#include "loom/runtime/transport/endpoint_impl.hpp"
#include "loom/runtime/transport/monitor.hpp"
#include "loom/runtime/transport/sockets.hpp"
#include "loom/runtime/transport/zap.hpp"

namespace loom::transport {

using detail::clock;

void endpoint::impl::handle(cmd_bind& c) {
  try {
    c.done.set_value(bind_router(c.address));
  } catch (const zmq::error_t& e) {
    c.done.set_exception(std::make_exception_ptr(
        transport_error(fmt::format("cannot bind {}: {}", c.address, e.what()))));
  } catch (...) {
    c.done.set_exception(std::current_exception());
  }
}

std::string endpoint::impl::bind_router(std::string address) {
  if (router) throw transport_error(fmt::format("cannot bind {}: this endpoint is bound already", address));
  if (address.size() > 2 && address.ends_with(":0")) address.replace(address.size() - 1, 1, "*");
  auto s = make_router(ctx, cfg);
  auto mon = watch(ctx, s, fmt::format("inproc://loom-monitor-router-{}", static_cast<void*>(this)),
                   handshake_events, address);
  s.bind(address);
  auto bound = s.get(zmq::sockopt::last_endpoint);
  router.emplace(std::move(s));
  router_mon.emplace(std::move(mon));
  return bound;
}

void endpoint::impl::router_events() {
  while (router_mon) {
    auto ev = read_monitor(*router_mon);
    if (!ev) return;
    if (ev->event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || ev->event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      report(problem::kind::refused, ev->address,
              fmt::format("refused a peer on {}: {}", ev->address,
                          ev->event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? protocol_error_text(ev->value)
                                                                           : std::string("handshake failed (a client without the curve keys?)")));
    }
    // FAILED_AUTH was reported by zap_request, with the client's key.
  }
}

// ZAP (RFC 27): the curve server asks whether a client key may connect (zap.hpp).
void endpoint::impl::zap_request() {
  answer_zap(
      *zap,
      [this](const std::string& key) {
        std::lock_guard lock(allowed_mu);
        return allowed.contains(key);
      },
      [this](const std::string& peer, const std::string& text) { report(problem::kind::refused, peer, text); });
}

void endpoint::impl::flush_router() {
  while (router && !router_pending.empty()) {
    auto& parts = router_pending.front();
    std::string name = parts[0].to_string();
    if (parked_names.contains(name)) {  // keep the order: behind what waits for this peer already
      parked.push_back({clock::now() + cfg.reconnect_grace, std::move(parts)});
      router_pending.pop_front();
      continue;
    }
    auto bytes = bytes_of(parts, 1);  // not the routing id
    try {
      if (!send_one(*router, parts)) return;
      links.count(name, true, bytes);
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH && cfg.reconnect_grace.count() > 0) {
        // Not connected right now: it may be reconnecting. Kept and retried until reconnect_grace.
        parked_names.insert(name);
        parked.push_back({clock::now() + cfg.reconnect_grace, std::move(parts)});
      } else {
        report(problem::kind::send, name,
               e.num() == EHOSTUNREACH ? fmt::format("send to '{}': no such peer is connected: message dropped", name)
                                       : fmt::format("send to '{}' failed: {}: message dropped", name, e.what()));
      }
    }
    router_pending.pop_front();
  }
}

// Retries what waits for a peer that was not connected; what waited past reconnect_grace is dropped and
// reported.
void endpoint::impl::retry_parked() {
  if (!router) return;
  std::deque<parked_msg> still;
  std::unordered_set<std::string> blocked;
  auto now = clock::now();
  for (auto& m : parked) {
    std::string name = m.parts[0].to_string();
    if (blocked.contains(name)) {
      still.push_back(std::move(m));
      continue;
    }
    auto bytes = bytes_of(m.parts, 1);  // not the routing id
    try {
      if (send_one(*router, m.parts)) {
        links.count(name, true, bytes);
        continue;
      }
      blocked.insert(name);
      still.push_back(std::move(m));
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH && now < m.until) {
        blocked.insert(name);
        still.push_back(std::move(m));
      } else {
        report(problem::kind::send, name,
               e.num() == EHOSTUNREACH
                   ? fmt::format("send to '{}': no such peer is connected: message dropped", name)
                   : fmt::format("send to '{}' failed: {}: message dropped", name, e.what()));
      }
    }
  }
  parked = std::move(still);
  parked_names = std::move(blocked);
}

}  // namespace loom::transport
