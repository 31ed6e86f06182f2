// runtime/transport/endpoint.cpp: the endpoint's public API and its command queue: any thread hands a
// command (send, bind, connect, forget, drop, stop) to the I/O thread through a mutex-guarded queue and an
// eventfd; here too is how the I/O thread handles a send: a credit is encoded there so that an ack can ride
// on it, and a movable instance's credit waits behind its fence (fences.hpp). The I/O thread's other work is
// split by concern (endpoint_impl.hpp lists the files).
#include "loom/runtime/transport/endpoint.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "loom/runtime/transport/endpoint_impl.hpp"
#include "loom/runtime/transport/zap.hpp"

namespace loom::transport {

using detail::clock;
using detail::reverse;

endpoint::impl::impl(endpoint_config c, endpoint_callbacks b) : cfg(std::move(c)), cb(std::move(b)) {
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

endpoint::impl::~impl() {
  push(cmd_stop{});
  io.join();
  ::close(wake_fd);
}

void endpoint::impl::push(command c) {
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

void endpoint::impl::report(problem::kind k, std::string peer, std::string text) {
  problem p;
  p.what = k;
  p.peer = std::move(peer);
  p.text = std::move(text);
  report(std::move(p));
}

void endpoint::impl::report(problem p) {
  if (!cb.on_problem) spdlog::warn("wire {}: {}", cfg.name, p.text);
  if (cb.on_problem) {
    try {
      cb.on_problem(p);
    } catch (const std::exception& e) {
      spdlog::error("wire {}: on_problem threw: {}", cfg.name, e.what());
    }
  }
}

void endpoint::impl::handle(cmd_drop& c) {
  if (c.peer < dealers.size() && dealers[c.peer]->sock) fail_connect(*dealers[c.peer], "dropped");
}

void endpoint::impl::handle(cmd_forget& c) {
  inbound.forget(c.run, c.from);
  if (!c.from) {
    outbound.forget_run(c.run);
    kept_count.set(outbound.kept());
    fenced.forget_run(c.run);
  }
  gate.forget(c.run, c.from);
  c.done.set_value();
}

// The fence of a movable instance (send_fenced, fences.hpp). Returns true when `c` waits: a credit whose
// instance has data envelopes out that are not acknowledged yet, or anything behind such a credit on its
// stream.
bool endpoint::impl::fence(cmd_send& c) {
  auto k = c.credit ? c.credit->stream() : c.numbered ? c.numbered->first : stream_key{};
  std::optional<std::uint64_t> seq;
  if (c.numbered) seq = c.numbered->second;
  auto peer = c.peer.value_or(~peer_id{0});  // send_fenced always names a connected peer
  if (c.credit) c.credit->after = fenced.follows_to(k, peer);  // the receiver holds it behind these
  bool waits = fenced.hold(k, peer, c.credit.has_value(), seq, c);
  fenced_count.set(fenced.fenced());
  return waits;
}

void endpoint::impl::handle(cmd_send& c) {
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

endpoint::endpoint(endpoint_config cfg, endpoint_callbacks callbacks)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(callbacks))) {}

endpoint::~endpoint() = default;

std::string endpoint::bind(const std::string& address) {
  detail::cmd_bind c{address, {}};
  auto f = c.done.get_future();
  impl_->push(std::move(c));
  return f.get();
}

peer_id endpoint::connect(const std::string& address, const connect_options& opts) {
  detail::cmd_connect c{address, opts, {}};
  auto f = c.done.get_future();
  impl_->push(std::move(c));
  return f.get();
}

void endpoint::send_parts(peer_id to, multipart parts) { impl_->push(detail::cmd_send{to, {}, std::move(parts)}); }
void endpoint::send_parts_to_name(const std::string& name, multipart parts) {
  impl_->push(detail::cmd_send{std::nullopt, name, std::move(parts)});
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
    impl_->push(detail::cmd_send{to, {}, {}, std::pair{e.stream(), e.seq}, e});
    return;
  }
  impl_->push(detail::cmd_send{to, {}, within_limit(encode(e, impl_->cfg.encode), impl_->cfg.max_part_bytes),
                       std::pair{e.stream(), e.seq}});
}
void endpoint::send_fenced(peer_id to, const envelope& e) {
  detail::cmd_send c;
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
    impl_->push(detail::cmd_send{std::nullopt, name, {}, std::nullopt, e});
    return;
  }
  send_parts_to_name(name, within_limit(encode(e, impl_->cfg.encode), impl_->cfg.max_part_bytes));
}
void endpoint::send_to_name(const std::string& name, const control_msg& c) {
  send_parts_to_name(name, within_limit(encode(c, impl_->cfg.encode), impl_->cfg.max_part_bytes));
}
const endpoint_config& endpoint::config() const { return impl_->cfg; }

void endpoint::drop(peer_id peer) { impl_->push(detail::cmd_drop{peer}); }
endpoint::counters endpoint::stats() const {
  return {impl_->kept_count.get(), impl_->acks_piggybacked.get(), impl_->acks_separate.get(),
          impl_->repeats_dropped.get(), impl_->fenced_count.get(), impl_->gated_count.get()};
}
void endpoint::forget_run(std::uint64_t run) {
  detail::cmd_forget c{run, {}};
  auto f = c.done.get_future();
  impl_->push(std::move(c));
  f.get();
}
void endpoint::forget_sender(std::uint64_t run, std::uint32_t from) {
  detail::cmd_forget c{run, {}, from};
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

