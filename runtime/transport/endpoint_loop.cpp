// runtime/transport/endpoint_loop.cpp: the endpoint's I/O thread itself: the poll loop over the eventfd,
// the sockets and their monitors (with the timeouts that acks, gaps and parked messages need), the receive
// path (decode, sequence check against inbound.hpp, acks riding back or sent alone, then on_message), and
// the shutdown that flushes what is queued.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "loom/runtime/transport/endpoint_impl.hpp"

namespace loom::transport {

using detail::clock;
using detail::printable;
using detail::reverse;

void endpoint::impl::run() {
  std::vector<zmq_pollitem_t> items;
  enum class src { wake, router, router_mon, zap, dealer, dealer_mon };
  std::vector<std::pair<src, std::size_t>> what;
  while (!stopping) {
    items.clear();
    what.clear();
    auto add = [&](void* sock, short events, src s, std::size_t i) {
      items.push_back({sock, sock ? 0 : wake_fd, events, 0});
      what.emplace_back(s, i);
    };
    add(nullptr, ZMQ_POLLIN, src::wake, 0);
    if (router) add(router->handle(), ZMQ_POLLIN | (router_pending.empty() ? 0 : ZMQ_POLLOUT), src::router, 0);
    if (router_mon) add(router_mon->handle(), ZMQ_POLLIN, src::router_mon, 0);
    if (zap) add(zap->handle(), ZMQ_POLLIN, src::zap, 0);
    long timeout = -1;
    auto now = clock::now();
    for (std::size_t i = 0; i < dealers.size(); ++i) {
      auto& d = *dealers[i];
      if (!d.sock) continue;
      add(d.sock->handle(), ZMQ_POLLIN | (d.pending.empty() ? 0 : ZMQ_POLLOUT), src::dealer, i);
      add(d.mon->handle(), ZMQ_POLLIN, src::dealer_mon, i);
      if (d.waiting) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d.deadline - now).count() + 1;
        timeout = timeout < 0 ? std::max<long>(ms, 0) : std::min<long>(timeout, std::max<long>(ms, 0));
      }
      if (d.down_since && !d.silence_reported) timeout = timeout < 0 ? 100 : std::min<long>(timeout, 100);
    }
    if (inbound.acks_pending() || inbound.has_gaps() || !parked.empty())
      timeout = timeout < 0 ? 10 : std::min<long>(timeout, 10);
    if (zmq_poll(items.data(), static_cast<int>(items.size()), timeout) < 0) {
      if (zmq_errno() == EINTR) continue;
      spdlog::error("wire {}: zmq_poll: {}", cfg.name, zmq_strerror(zmq_errno()));
      break;
    }
    for (std::size_t k = 0; k < items.size(); ++k) {
      if (!items[k].revents) continue;
      auto [s, i] = what[k];
      switch (s) {
        case src::wake: drain_commands(); break;
        case src::router:
          if (items[k].revents & ZMQ_POLLIN) receive(*router, true, {});
          flush_router();
          break;
        case src::router_mon: router_events(); break;
        case src::zap: zap_request(); break;
        case src::dealer:
          if (dealers[i]->sock && (items[k].revents & ZMQ_POLLIN))
            receive(*dealers[i]->sock, false, dealers[i]->address, i);
          if (dealers[i]->sock) flush_dealer(*dealers[i]);
          break;
        case src::dealer_mon:
          if (dealers[i]->sock) dealer_events(static_cast<peer_id>(i));
          break;
      }
    }
    check_deadlines();
    if (inbound.acks_pending()) send_acks(false);
    if (inbound.has_gaps()) check_gaps();
    if (!parked.empty()) retry_parked();
  }
  shutdown();
}

void endpoint::impl::drain_commands() {
  std::uint64_t n;
  [[maybe_unused]] auto r = ::read(wake_fd, &n, sizeof n);
  std::deque<command> batch;
  {
    std::lock_guard lock(mu);
    batch.swap(queue);
  }
  for (auto& c : batch) std::visit([this](auto& cmd) { handle(cmd); }, c);
  flush_router();
  for (auto& d : dealers)
    if (d->sock) flush_dealer(*d);
}

void endpoint::impl::receive(zmq::socket_t& s, bool routed, const std::string& address, std::size_t dealer_index) {
  for (int n = 0; n < 1024; ++n) {  // drain, but let other sockets have a turn
    multipart parts;
    zmq::message_t first;
    if (!s.recv(first, zmq::recv_flags::dontwait)) return;
    bool more = first.more();
    std::string peer = routed ? first.to_string() : address;
    std::string key;
    if (!routed) parts.push_back(std::move(first));
    while (more) {
      zmq::message_t m;
      (void)s.recv(m);  // the rest of a multipart message is already here
      more = m.more();
      // The ZAP handler set User-Id to the client's key; the ROUTER's own routing-id part carries no
      // metadata, so it is read from the first part the peer sent.
      if (routed && cfg.curve && parts.empty())
        if (const char* uid = zmq_msg_gets(m.handle(), "User-Id")) key = uid;
      parts.push_back(std::move(m));
    }
    deliver(std::move(peer), std::move(parts), std::move(key), routed, dealer_index);
  }
}

// `routed`: it came in on our ROUTER from `peer` (a name); else on dealer `from_dealer`.
void endpoint::impl::deliver(std::string peer, multipart parts, std::string key, bool routed, std::size_t from_dealer) {
  links.count(peer, false, bytes_of(parts, 0));
  auto d = decode(std::move(parts), cfg.limits);
  if (!d) {
    report(problem::kind::decode, peer, fmt::format("undecodable message from {}: {}", printable(peer), d.error));
    return;
  }
  if (auto* c = std::get_if<control_msg>(&*d.msg)) {
    if (auto* a = std::get_if<control::ack>(&c->body)) {  // endpoint business, not the application's
      for (const auto& x : a->streams) acknowledged(x.stream, x.next);
      return;
    }
  }
  if (auto* e = std::get_if<envelope>(&*d.msg)) {
    auto stream = e->stream();
    if (e->ack) acknowledged(reverse(stream), e->ack);  // an ack riding on a credit (even a repeated one)
    // ack_now: its sender's credits wait for the ack (a movable instance's output to this host while its
    // credits go to another).
    auto verdict = inbound.arrived(stream, e->seq, peer, routed, e->ack_now);
    if (verdict == inbound_streams::verdict::repeat) {  // resent after a reconnect: dropped, as promised
      repeats_dropped.add(1);
      return;
    }
    if (verdict == inbound_streams::verdict::ahead) return;  // behind a gap: the resends come in order
    // A movable instance's credit follows the data it sent here before it (credit_gate.hpp).
    if (!gate.empty() || !e->after.empty()) {
      auto after = std::move(e->after);
      incoming in{std::move(peer), std::move(*d.msg), std::move(key)};
      auto arrived = [this](const stream_key& k) { return inbound.next(k); };
      switch (gate.hold(stream, after, in, arrived)) {
        case credit_gate<incoming>::verdict::deliver:
          hand_over(std::move(in));
          break;
        case credit_gate<incoming>::verdict::wait:
          gated_count.add(1);
          return;
        case credit_gate<incoming>::verdict::refused:
          report(problem::kind::sequence, in.peer,
                 fmt::format("{} from {}: more than {} credits wait for data that has not come: dropped", to_string(stream),
                             printable(in.peer), credit_gate<incoming>::max_waiting));
          return;
      }
      if (!gate.empty())
        for (auto& x : gate.ready(arrived)) hand_over(std::move(x));
      return;
    }
  }
  hand_over({std::move(peer), std::move(*d.msg), std::move(key)});
}

void endpoint::impl::hand_over(incoming&& in) {
  if (!cb.on_message) return;
  try {
    cb.on_message(std::move(in));
  } catch (const std::exception& ex) {
    spdlog::error("wire {}: on_message threw: {}", cfg.name, ex.what());
  }
}

// Acks ride on the credits going back (handle(cmd_send)). A stream whose ack found no credit to ride on
// for a whole tick (10 to 20 ms), or that gathered `ack_every` envelopes, gets a separate Ack, one message
// per peer. `all`: every ack due, now (closing).
void endpoint::impl::send_acks(bool all) {
  auto out = inbound.due_acks(all, clock::now());
  for (auto& [name, a] : out) {
    multipart parts;
    parts.emplace_back(name.data(), name.size());
    for (auto& p : encode(control_msg{0, std::move(a)})) parts.push_back(std::move(p));
    router_pending.push_back(std::move(parts));
    acks_separate.add(1);
  }
  if (!out.empty()) flush_router();
}

// A gap that the resends have not filled within `gap_timeout` is a loss: reported once.
void endpoint::impl::check_gaps() {
  for (auto& p : inbound.overdue_gaps(clock::now(), cfg.gap_timeout)) report(std::move(p));
}

std::size_t endpoint::impl::bytes_of(const multipart& parts, std::size_t from) {
  std::size_t n = 0;
  for (std::size_t i = from; i < parts.size(); ++i) n += parts[i].size();
  return n;
}

// Sends what is queued until zmq would block (never, with HWM 0; then POLLOUT resumes it).
bool endpoint::impl::send_one(zmq::socket_t& s, multipart& parts) {
  for (std::size_t i = 0; i < parts.size(); ++i) {
    bool last = i + 1 == parts.size();
    auto flags = last ? zmq::send_flags::none : zmq::send_flags::sndmore;
    if (!s.send(parts[i], flags | zmq::send_flags::dontwait)) {
      if (i == 0) return false;  // EAGAIN before the first part: try again later
      (void)s.send(parts[i], flags);  // a started multipart always completes
    }
  }
  return true;
}

void endpoint::impl::shutdown() {
  send_acks(true);
  for (auto& d : dealers) {
    if (d->waiting) fail_connect(*d, fmt::format("{} {}: the endpoint closed", d->opts.role, d->address));
    if (d->sock) flush_dealer(*d);
  }
  // Monitors first (they hold inproc pipes), then the sockets; their linger lets queued data leave.
  router_mon.reset();
  for (auto& d : dealers) d->mon.reset();
  router.reset();
  dealers.clear();
  zap.reset();
}

}  // namespace loom::transport
