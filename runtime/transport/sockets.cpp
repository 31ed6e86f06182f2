// runtime/transport/sockets.cpp: making an endpoint's sockets and setting their options.
#include "loom/runtime/transport/sockets.hpp"

#include <fmt/format.h>

namespace loom::transport {

void set_curve_key(zmq::socket_t& s, int option, const std::string& z85) {
  if (zmq_setsockopt(s.handle(), option, z85.data(), z85.size()) != 0)
    throw transport_error(fmt::format("cannot set a curve key: {}", zmq_strerror(zmq_errno())));
}

void set_liveness(zmq::socket_t& s, const endpoint_config& cfg) {
  s.set(zmq::sockopt::maxmsgsize, cfg.max_part_bytes);
  s.set(zmq::sockopt::linger, static_cast<int>(cfg.linger.count()));
  s.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(cfg.heartbeat_ivl.count()));
  s.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(cfg.heartbeat_timeout.count()));
  s.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(cfg.heartbeat_timeout.count()));
  s.set(zmq::sockopt::tcp_keepalive, 1);
  s.set(zmq::sockopt::tcp_keepalive_idle, 5);
  s.set(zmq::sockopt::tcp_keepalive_intvl, 2);
  s.set(zmq::sockopt::tcp_keepalive_cnt, 3);
}

zmq::socket_t make_router(zmq::context_t& ctx, const endpoint_config& cfg) {
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.set(zmq::sockopt::router_mandatory, 1);  // an unknown name is an error, not a silent drop
  s.set(zmq::sockopt::sndhwm, 0);            // credits bound what is in flight (docs/wire.md)
  s.set(zmq::sockopt::rcvhwm, 0);
  s.set(zmq::sockopt::router_handover, 1);   // a reconnecting peer takes its name over from a dead pipe
  set_liveness(s, cfg);
  if (cfg.curve) {
    s.set(zmq::sockopt::curve_server, 1);
    set_curve_key(s, ZMQ_CURVE_SECRETKEY, cfg.curve->secret_key);
    s.set(zmq::sockopt::zap_domain, "loom");
  }
  return s;
}

zmq::socket_t make_dealer(zmq::context_t& ctx, const endpoint_config& cfg, const std::string& address,
                          const connect_options& opts) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::routing_id, cfg.name);
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  set_liveness(s, cfg);
  if (cfg.curve) {
    if (!valid_z85_key(opts.server_key))
      throw transport_error(fmt::format("cannot connect to {} {}: curve is configured but the server key '{}' "
                                        "is not a z85 public key",
                                        opts.role, address, opts.server_key));
    set_curve_key(s, ZMQ_CURVE_SERVERKEY, opts.server_key);
    set_curve_key(s, ZMQ_CURVE_PUBLICKEY, cfg.curve->public_key);
    set_curve_key(s, ZMQ_CURVE_SECRETKEY, cfg.curve->secret_key);
  }
  return s;
}

}  // namespace loom::transport
