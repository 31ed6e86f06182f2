// runtime/transport/endpoint_dealer.cpp: the dealer side of the endpoint's I/O thread: the sockets this
// process connected (sockets.hpp makes them): connect and its deadline, handshake events from their monitors
// (monitor.hpp), a lost link's grace, flushing what is queued (keeping each data envelope until it is
// acknowledged, outbound.hpp), resending after a reconnect, and acknowledgements that release kept envelopes
// and fenced credits (fences.hpp).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "loom/runtime/transport/endpoint_impl.hpp"
#include "loom/runtime/transport/monitor.hpp"
#include "loom/runtime/transport/sockets.hpp"

namespace loom::transport {

using detail::clock;

void endpoint::impl::handle(cmd_connect& c) {
  auto id = static_cast<peer_id>(dealers.size());
  auto d = std::make_unique<dealer>();
  d->id = id;
  d->address = c.address;
  d->opts = c.opts;
  try {
    auto s = make_dealer(ctx, cfg, c.address, c.opts);
    auto mon = watch(ctx, s, fmt::format("inproc://loom-monitor-dealer-{}-{}", static_cast<void*>(this), id),
                     handshake_events | ZMQ_EVENT_DISCONNECTED, c.address);
    s.connect(c.address);
    d->sock.emplace(std::move(s));
    d->mon.emplace(std::move(mon));
    d->waiting.emplace(std::move(c.done));
    d->deadline = clock::now() + c.opts.timeout;
  } catch (const zmq::error_t& e) {
    c.done.set_exception(std::make_exception_ptr(
        transport_error(fmt::format("cannot connect to {} {}: {}", c.opts.role, c.address, e.what()))));
  } catch (...) {
    c.done.set_exception(std::current_exception());
  }
  dealers.push_back(std::move(d));
}

void endpoint::impl::fail_connect(dealer& d, const std::string& why) {
  if (d.waiting) {
    d.waiting->set_exception(std::make_exception_ptr(transport_error(why)));
    d.waiting.reset();
  }
  d.pending.clear();
  outbound.forget_owner(d.id);
  kept_count.set(outbound.kept());
  d.mon.reset();
  if (d.sock) d.sock->set(zmq::sockopt::linger, 0);
  d.sock.reset();
}

void endpoint::impl::check_deadlines() {
  auto now = clock::now();
  for (auto& d : dealers) {
    if (d->sock && d->down_since && !d->silence_reported && now - *d->down_since >= cfg.link_grace) {
      d->silence_reported = true;
      report(problem::kind::silent, d->address,
             fmt::format("{} {}: the connection closed (silent past the {} ms heartbeat timeout, or reset) and "
                         "did not come back within {} ms",
                         d->opts.role, d->address, cfg.heartbeat_timeout.count(), cfg.link_grace.count()));
    }
    if (!d->waiting || now < d->deadline) continue;
    auto ms = d->opts.timeout.count();
    fail_connect(*d, ms % 1000 == 0 ? fmt::format("{} {} not reachable after {} s", d->opts.role, d->address, ms / 1000)
                                    : fmt::format("{} {} not reachable after {} ms", d->opts.role, d->address, ms));
  }
}

void endpoint::impl::dealer_events(peer_id id) {
  auto& d = *dealers[id];
  while (d.mon) {
    auto ev = read_monitor(*d.mon);
    if (!ev) return;
    switch (ev->event) {
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        d.up = true;
        if (d.silence_reported)
          spdlog::info("wire {}: {} {} is back", cfg.name, d.opts.role, d.address);
        d.down_since.reset();
        d.silence_reported = false;
        if (d.was_up) resend(d);
        d.was_up = true;
        if (d.waiting) {
          d.waiting->set_value(id);
          d.waiting.reset();
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: {
        auto why = fmt::format("{} {} refused this endpoint's curve key (ZAP status {}): it does not allow the "
                               "public key {} (a worker lets in the driver keys of its --allow)",
                               d.opts.role, d.address, ev->value, cfg.curve ? cfg.curve->public_key : "");
        report(problem::kind::refused, d.address, why);
        fail_connect(d, why);
        return;
      }
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: {
        auto why = fmt::format("handshake with {} {} failed: {}", d.opts.role, d.address,
                               ev->event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                                   ? client_protocol_text(cfg.curve.has_value(), d.opts.role, ev->value)
                                   : closed_in_handshake_text(cfg.curve.has_value(), d.opts.role, d.opts.server_key));
        report(problem::kind::refused, d.address, why);
        fail_connect(d, why);
        return;
      }
      case ZMQ_EVENT_DISCONNECTED:
        if (d.up) {
          report(problem::kind::disconnected, d.address,
                  fmt::format("{} {} disconnected; reconnecting", d.opts.role, d.address));
          d.down_since = clock::now();
        }
        d.up = false;
        break;
      default: break;
    }
  }
}

void endpoint::impl::flush_dealer(dealer& d) {
  while (!d.pending.empty()) {
    auto& q = d.pending.front();
    std::optional<outbound_streams::kept_msg> kept;
    if (q.numbered) kept = outbound_streams::copy(q.numbered->second, q.parts);  // before zmq takes the parts
    auto bytes = bytes_of(q.parts, 0);
    try {
      if (!send_one(*d.sock, q.parts)) return;
      links.count(d.address, true, bytes);
      if (q.numbered) {
        outbound.keep(q.numbered->first, d.id, std::move(*kept));
        kept_count.add(1);
      }
    } catch (const zmq::error_t& e) {
      report(problem::kind::send, d.address, fmt::format("send to {} failed: {}: message dropped", d.address, e.what()));
    }
    d.pending.pop_front();
  }
}

// After a reconnect: everything not acknowledged goes again, in order per stream, ahead of what waits to
// be sent. The receiver drops what it already had by sequence number.
void endpoint::impl::resend(dealer& d) {
  std::deque<dealer::queued> again;
  for (auto& [k, m] : outbound.take(d.id))  // kept again as they go out
    again.push_back({outbound_streams::parts_of(m), std::pair{k, m.seq}});
  kept_count.set(outbound.kept());
  if (again.empty()) return;
  spdlog::info("wire {}: resending {} unacknowledged message(s) to {}", cfg.name, again.size(), d.address);
  for (auto& p : d.pending) again.push_back(std::move(p));
  d.pending = std::move(again);
  flush_dealer(d);
}

// Every kept envelope of `stream` below `next` arrived: forgotten.
void endpoint::impl::acknowledged(const stream_key& stream, std::uint64_t next) {
  note_fence_ack(stream, next);
  outbound.acknowledged(stream, next);
  kept_count.set(outbound.kept());
}

void endpoint::impl::note_fence_ack(const stream_key& stream, std::uint64_t next) {
  // An acknowledgement came: the held credits whose data is all acknowledged go, in order per stream.
  for (auto& c : fenced.acknowledged(stream, next)) {
    c.released = true;
    handle(c);
  }
}

}  // namespace loom::transport
