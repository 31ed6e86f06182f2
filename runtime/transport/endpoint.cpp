// runtime/transport/endpoint.cpp: the I/O thread: its command queue, its poll loop over the sockets
// (sockets.hpp makes them, monitor.hpp reads their handshake events, zap.hpp answers their curve server),
// and the glue between the stream rule's plain state machines: what is kept until acknowledged
// (outbound.hpp), what arrived and which acks are due (inbound.hpp), and the fences of movable instances
// (fences.hpp).
#include "loom/runtime/transport/endpoint.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <variant>

#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/transport/fences.hpp"
#include "loom/runtime/transport/inbound.hpp"
#include "loom/runtime/transport/monitor.hpp"
#include "loom/runtime/transport/outbound.hpp"
#include "loom/runtime/transport/sockets.hpp"
#include "loom/runtime/transport/zap.hpp"

namespace loom::transport {
namespace {

// A peer's name for a log line: a stray client's routing id is binary (ZeroMQ makes one starting with a
// NUL byte), which would cut the line short; such a name is written in hex.
std::string printable(const std::string& peer) {
  bool text = !peer.empty() && std::all_of(peer.begin(), peer.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (text) return peer;
  std::string hex = "0x";
  for (unsigned char c : peer) hex += fmt::format("{:02x}", c);
  return hex;
}

using clock = std::chrono::steady_clock;

struct cmd_send {
  std::optional<peer_id> peer;  // a DEALER we connected, or else
  std::string name;             // a peer on our ROUTER
  multipart parts;
  std::optional<std::pair<stream_key, std::uint64_t>> numbered;  // a data envelope: kept until acknowledged
  // A credit envelope, encoded on the I/O thread (parts empty) so that an ack can ride on it.
  std::optional<envelope> credit;
  bool fenced = false;    // from a movable instance (endpoint::send_fenced)
  bool released = false;  // a held fenced message, now free to go
};

// The stream that answers `k`: credits from `to` back to `from` go on it.
stream_key reverse(const stream_key& k) { return {k.run, k.to, k.from}; }
struct cmd_bind {
  std::string address;
  std::promise<std::string> done;
};
struct cmd_connect {
  std::string address;
  connect_options opts;
  std::promise<peer_id> done;
};
struct cmd_stop {};
struct cmd_forget {
  std::uint64_t run;
  std::promise<void> done;
  std::optional<std::uint32_t> from;  // only what arrived from this instance
};
struct cmd_drop {
  peer_id peer;
};
using command = std::variant<cmd_send, cmd_bind, cmd_connect, cmd_stop, cmd_forget, cmd_drop>;


}  // namespace

struct endpoint::impl {
  struct dealer {
    peer_id id = 0;  // its index in `dealers`: the owner of what it sent (outbound)
    std::string address;
    connect_options opts;
    std::optional<zmq::socket_t> sock;
    std::optional<zmq::socket_t> mon;
    // Waiting to be handed to zmq; `numbered`: a data envelope, kept once sent until acknowledged.
    struct queued {
      multipart parts;
      std::optional<std::pair<stream_key, std::uint64_t>> numbered;
    };
    std::deque<queued> pending;
    bool up = false, was_up = false;
    std::optional<clock::time_point> down_since;  // closed after being up, not back yet
    bool silence_reported = false;
    std::optional<std::promise<peer_id>> waiting;
    clock::time_point deadline;
  };

  impl(endpoint_config c, endpoint_callbacks b) : cfg(std::move(c)), cb(std::move(b)) {
    if (cfg.name.empty() || cfg.name.size() > 255)
      throw transport_error("endpoint: the name must have 1 to 255 characters");
    if (cfg.curve) {
      if (!curve_available()) throw transport_error("endpoint: curve keys given, but libzmq has no CurveZMQ");
      if (!valid_z85_key(cfg.curve->public_key) || !valid_z85_key(cfg.curve->secret_key))
        throw transport_error("endpoint: the curve key pair is not two z85 keys of 40 characters");
      for (const auto& k : cfg.allowed_clients)
        if (!valid_z85_key(k)) throw transport_error(fmt::format("endpoint: allowed client key '{}' is not z85", k));
      allowed.insert(cfg.allowed_clients.begin(), cfg.allowed_clients.end());
    }
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) throw transport_error(fmt::format("endpoint: eventfd: {}", std::strerror(errno)));
    if (cfg.curve) {  // the ZAP handler must exist before any curve socket accepts
      zap.emplace(ctx, zmq::socket_type::rep);
      zap->set(zmq::sockopt::linger, 0);
      zap->bind(zap_address);
    }
    io = std::thread([this] { run(); });
    io_id = io.get_id();
  }

  ~impl() {
    push(cmd_stop{});
    io.join();
    ::close(wake_fd);
  }

  void push(command c) {
    // A send from on_message (the I/O thread itself: a credit answering a batch, a reply) is handled at once:
    // no lock, no eventfd write and read, no extra turn of the poll loop. What it queues on a socket goes
    // out at the next poll (POLLOUT), as anything queued.
    if (std::holds_alternative<cmd_send>(c) && std::this_thread::get_id() == io_id) {
      handle(std::get<cmd_send>(c));
      return;
    }
    bool was_empty;
    {
      std::lock_guard lock(mu);
      was_empty = queue.empty();
      queue.push_back(std::move(c));
    }
    if (was_empty) {
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
    }
  }

  void report(problem::kind k, std::string peer, std::string text) {
    problem p;
    p.what = k;
    p.peer = std::move(peer);
    p.text = std::move(text);
    report(std::move(p));
  }

  void report(problem p) {
    if (!cb.on_problem) spdlog::warn("wire {}: {}", cfg.name, p.text);
    if (cb.on_problem) {
      try {
        cb.on_problem(p);
      } catch (const std::exception& e) {
        spdlog::error("wire {}: on_problem threw: {}", cfg.name, e.what());
      }
    }
  }

  // ------------------------------------------------------------------------------------ the I/O thread

  void run() {
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

  void drain_commands() {
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

  void handle(cmd_stop&) { stopping = true; }

  void handle(cmd_drop& c) {
    if (c.peer < dealers.size() && dealers[c.peer]->sock) fail_connect(*dealers[c.peer], "dropped");
  }

  void handle(cmd_forget& c) {
    inbound.forget(c.run, c.from);
    if (!c.from) {
      outbound.forget_run(c.run);
      kept_count.set(outbound.kept());
      fenced.forget_run(c.run);
    }
    c.done.set_value();
  }

  // The fence of a movable instance (send_fenced, fences.hpp). Returns true when `c` waits: a credit whose
  // instance has data envelopes out that are not acknowledged yet, or anything behind such a credit on its
  // stream.
  bool fence(cmd_send& c) {
    auto k = c.credit ? c.credit->stream() : c.numbered ? c.numbered->first : stream_key{};
    std::optional<std::uint64_t> seq;
    if (c.numbered) seq = c.numbered->second;
    bool waits = fenced.hold(k, c.credit.has_value(), seq, c);
    fenced_count.set(fenced.fenced());
    return waits;
  }

  void handle(cmd_send& c) {
    if (c.fenced && !c.released && fence(c)) return;
    if (c.credit) {  // an ack of the stream this credit answers rides on it, if one is due
      auto& e = *c.credit;
      if (auto ack = inbound.piggyback(reverse(e.stream()))) {
        e.ack = ack;
        acks_piggybacked.add(1);
      }
      try {
        c.parts = encode(e, cfg.encode);
      } catch (const std::exception& ex) {
        report(problem::kind::send, c.name, fmt::format("{}: cannot encode a credit: {}", to_string(e.stream()), ex.what()));
        return;
      }
    }
    if (c.peer) {
      if (*c.peer >= dealers.size() || !dealers[*c.peer]->sock) {
        report(problem::kind::send, fmt::format("peer #{}", *c.peer),
                fmt::format("send to peer #{}, which is not connected: message dropped", *c.peer));
        return;
      }
      dealers[*c.peer]->pending.push_back({std::move(c.parts), c.numbered});
    } else {
      if (!router) {
        report(problem::kind::send, c.name, fmt::format("send to '{}' before bind: message dropped", c.name));
        return;
      }
      multipart parts;
      parts.reserve(c.parts.size() + 1);
      parts.emplace_back(c.name.data(), c.name.size());
      for (auto& p : c.parts) parts.push_back(std::move(p));
      router_pending.push_back(std::move(parts));
    }
  }

  void handle(cmd_bind& c) {
    try {
      c.done.set_value(bind_router(c.address));
    } catch (const zmq::error_t& e) {
      c.done.set_exception(std::make_exception_ptr(
          transport_error(fmt::format("cannot bind {}: {}", c.address, e.what()))));
    } catch (...) {
      c.done.set_exception(std::current_exception());
    }
  }


  std::string bind_router(std::string address) {
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

  void handle(cmd_connect& c) {
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

  void fail_connect(dealer& d, const std::string& why) {
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

  void check_deadlines() {
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

  void dealer_events(peer_id id) {
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


  void router_events() {
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
  void zap_request() {
    answer_zap(
        *zap,
        [this](const std::string& key) {
          std::lock_guard lock(allowed_mu);
          return allowed.contains(key);
        },
        [this](const std::string& peer, const std::string& text) { report(problem::kind::refused, peer, text); });
  }

  void receive(zmq::socket_t& s, bool routed, const std::string& address, std::size_t dealer_index = 0) {
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
  void deliver(std::string peer, multipart parts, std::string key, bool routed, std::size_t from_dealer) {
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
      auto verdict = inbound.arrived(stream, e->seq, peer, routed);
      if (verdict == inbound_streams::verdict::repeat) {  // resent after a reconnect: dropped, as promised
        repeats_dropped.add(1);
        return;
      }
      if (verdict == inbound_streams::verdict::ahead) return;  // behind a gap: the resends come in order
    }
    if (!cb.on_message) return;
    try {
      cb.on_message({std::move(peer), std::move(*d.msg), std::move(key)});
    } catch (const std::exception& ex) {
      spdlog::error("wire {}: on_message threw: {}", cfg.name, ex.what());
    }
  }

  // Acks ride on the credits going back (handle(cmd_send)). A stream whose ack found no credit to ride on
  // for a whole tick (10 to 20 ms), or that gathered `ack_every` envelopes, gets a separate Ack, one message
  // per peer. `all`: every ack due, now (closing).
  void send_acks(bool all) {
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
  void check_gaps() {
    for (auto& p : inbound.overdue_gaps(clock::now(), cfg.gap_timeout)) report(std::move(p));
  }

  static std::size_t bytes_of(const multipart& parts, std::size_t from) {
    std::size_t n = 0;
    for (std::size_t i = from; i < parts.size(); ++i) n += parts[i].size();
    return n;
  }

  // Sends what is queued until zmq would block (never, with HWM 0; then POLLOUT resumes it).
  bool send_one(zmq::socket_t& s, multipart& parts) {
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


  void flush_dealer(dealer& d) {
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
  void resend(dealer& d) {
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
  void acknowledged(const stream_key& stream, std::uint64_t next) {
    note_fence_ack(stream, next);
    outbound.acknowledged(stream, next);
    kept_count.set(outbound.kept());
  }

  void note_fence_ack(const stream_key& stream, std::uint64_t next) {
    // An acknowledgement came: the held credits whose data is all acknowledged go, in order per stream.
    for (auto& c : fenced.acknowledged(stream, next)) {
      c.released = true;
      handle(c);
    }
  }

  void flush_router() {
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
  void retry_parked() {
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

  void shutdown() {
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

  endpoint_config cfg;
  endpoint_callbacks cb;
  std::mutex allowed_mu;
  std::unordered_set<std::string> allowed;
  zmq::context_t ctx;
  int wake_fd = -1;
  std::mutex mu;
  std::deque<command> queue;
  std::thread io;
  std::thread::id io_id;  // set before any callback can run
  // Only the I/O thread touches what follows.
  bool stopping = false;
  std::optional<zmq::socket_t> router, router_mon, zap;
  std::deque<multipart> router_pending;
  std::vector<std::unique_ptr<dealer>> dealers;
  // The streams received: sequence numbers, gaps, acks due (inbound.hpp; one lookup per envelope).
  inbound_streams inbound;
  // Written by the I/O thread only (a relaxed load and store: no locked instruction), read by stats().
  struct stat {
    std::atomic<std::uint64_t> v{0};
    void add(std::int64_t n) { v.store(v.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(n), std::memory_order_relaxed); }
    void set(std::uint64_t n) { v.store(n, std::memory_order_relaxed); }
    std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
  };
  stat acks_piggybacked, acks_separate, kept_count, repeats_dropped, fenced_count;
  // What went out on our DEALERs and is not acknowledged yet (outbound.hpp).
  outbound_streams outbound;

  fences<cmd_send> fenced;  // the credits of movable instances that wait for acknowledgements (fences.hpp)
  observe::link_meters links;  // loom_link_bytes_total / _messages_total, counted on this (the I/O) thread
  struct parked_msg {
    clock::time_point until;
    multipart parts;
  };
  std::deque<parked_msg> parked;               // for peers on our ROUTER that were not connected
  std::unordered_set<std::string> parked_names;
};

endpoint::endpoint(endpoint_config cfg, endpoint_callbacks callbacks)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(callbacks))) {}

endpoint::~endpoint() = default;

std::string endpoint::bind(const std::string& address) {
  cmd_bind c{address, {}};
  auto f = c.done.get_future();
  impl_->push(std::move(c));
  return f.get();
}

peer_id endpoint::connect(const std::string& address, const connect_options& opts) {
  cmd_connect c{address, opts, {}};
  auto f = c.done.get_future();
  impl_->push(std::move(c));
  return f.get();
}

void endpoint::send_parts(peer_id to, multipart parts) { impl_->push(cmd_send{to, {}, std::move(parts)}); }
void endpoint::send_parts_to_name(const std::string& name, multipart parts) {
  impl_->push(cmd_send{std::nullopt, name, std::move(parts)});
}
namespace {
// A part the receiver would drop (and this endpoint would resend forever) is refused here.
multipart within_limit(multipart parts, std::int64_t limit) {
  for (const auto& p : parts)
    if (static_cast<std::int64_t>(p.size()) > limit)
      throw encode_error(fmt::format("a message part of {} bytes exceeds max_message_size ({} bytes)", p.size(), limit));
  return parts;
}
}  // namespace

void endpoint::send(peer_id to, const envelope& e) {
  if (std::holds_alternative<local::credit_msg>(e.body)) {  // encoded on the I/O thread, with an ack if due
    impl_->push(cmd_send{to, {}, {}, std::pair{e.stream(), e.seq}, e});
    return;
  }
  impl_->push(cmd_send{to, {}, within_limit(encode(e, impl_->cfg.encode), impl_->cfg.max_part_bytes),
                       std::pair{e.stream(), e.seq}});
}
void endpoint::send_fenced(peer_id to, const envelope& e) {
  cmd_send c;
  c.peer = to;
  c.numbered = std::pair{e.stream(), e.seq};
  c.fenced = true;
  if (std::holds_alternative<local::credit_msg>(e.body))
    c.credit = e;
  else
    c.parts = within_limit(encode(e, impl_->cfg.encode), impl_->cfg.max_part_bytes);
  impl_->push(std::move(c));
}
void endpoint::send(peer_id to, const control_msg& c) {
  send_parts(to, within_limit(encode(c, impl_->cfg.encode), impl_->cfg.max_part_bytes));
}
void endpoint::send_to_name(const std::string& name, const envelope& e) {
  if (std::holds_alternative<local::credit_msg>(e.body)) {
    impl_->push(cmd_send{std::nullopt, name, {}, std::nullopt, e});
    return;
  }
  send_parts_to_name(name, within_limit(encode(e, impl_->cfg.encode), impl_->cfg.max_part_bytes));
}
void endpoint::send_to_name(const std::string& name, const control_msg& c) {
  send_parts_to_name(name, within_limit(encode(c, impl_->cfg.encode), impl_->cfg.max_part_bytes));
}
const endpoint_config& endpoint::config() const { return impl_->cfg; }

void endpoint::drop(peer_id peer) { impl_->push(cmd_drop{peer}); }
endpoint::counters endpoint::stats() const {
  return {impl_->kept_count.get(), impl_->acks_piggybacked.get(), impl_->acks_separate.get(),
          impl_->repeats_dropped.get(), impl_->fenced_count.get()};
}
void endpoint::forget_run(std::uint64_t run) {
  cmd_forget c{run, {}};
  auto f = c.done.get_future();
  impl_->push(std::move(c));
  f.get();
}
void endpoint::forget_sender(std::uint64_t run, std::uint32_t from) {
  cmd_forget c{run, {}, from};
  auto f = c.done.get_future();
  impl_->push(std::move(c));
  f.get();
}
void endpoint::allow(const std::vector<std::string>& keys) {
  for (const auto& k : keys)
    if (!valid_z85_key(k)) throw transport_error(fmt::format("endpoint: allowed client key '{}' is not z85", k));
  std::lock_guard lock(impl_->allowed_mu);
  impl_->allowed.insert(keys.begin(), keys.end());
}

void endpoint::disallow(const std::vector<std::string>& keys) {
  std::lock_guard lock(impl_->allowed_mu);
  for (const auto& k : keys)
    if (std::find(impl_->cfg.allowed_clients.begin(), impl_->cfg.allowed_clients.end(), k) ==
        impl_->cfg.allowed_clients.end())
      impl_->allowed.erase(k);
}

}  // namespace loom::transport
