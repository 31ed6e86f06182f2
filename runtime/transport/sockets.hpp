// runtime/transport/sockets.hpp: the ZeroMQ sockets an endpoint opens, with the options every one of them
// needs: the part size limit, ZMTP heartbeats and TCP keepalive (a dead peer is found, a half-open
// connection does not linger), no high-water marks (credits bound what is in flight), and CurveZMQ keys.
// The endpoint (endpoint.cpp) binds, connects and monitors them; this file only makes them.
#pragma once

#include <zmq.hpp>

#include <string>

#include "loom/runtime/transport/endpoint.hpp"

namespace loom::transport {

// Sets one CurveZMQ key option (ZMQ_CURVE_SECRETKEY, _PUBLICKEY, _SERVERKEY) from its z85 text.
// Throws transport_error.
void set_curve_key(zmq::socket_t& s, int option, const std::string& z85);

// Limits and liveness every socket shares: ZMQ_MAXMSGSIZE, linger, ZMTP heartbeats, TCP keepalive.
void set_liveness(zmq::socket_t& s, const endpoint_config& cfg);

// The bound ROUTER: an unknown name is an error (ROUTER_MANDATORY), a reconnecting peer takes its name
// over (ROUTER_HANDOVER), no HWM; a curve server in the ZAP domain "loom" when cfg has keys.
zmq::socket_t make_router(zmq::context_t& ctx, const endpoint_config& cfg);

// A DEALER to one peer, announcing cfg.name as its routing id; a curve client of the peer's server key
// when cfg has keys. Throws transport_error for a server key that is not z85 (naming the peer).
zmq::socket_t make_dealer(zmq::context_t& ctx, const endpoint_config& cfg, const std::string& address,
                          const connect_options& opts);

}  // namespace loom::transport
