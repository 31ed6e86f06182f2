// runtime/transport/zap.hpp: ZAP (ZeroMQ RFC 27) authentication of an endpoint's curve server. The curve
// server asks, for every client that opens a handshake, whether its public key may connect; the endpoint
// answers from its allowed keys (endpoint_config::allowed_clients, endpoint::allow / disallow). A client
// without curve keys, a malformed request or a key not allowed is refused, and the refusal is reported.
#pragma once

#include <zmq.hpp>

#include <functional>
#include <string>

namespace loom::transport {

// The inproc address libzmq sends ZAP requests to; the handler must be bound before a curve socket accepts.
inline constexpr const char* zap_address = "inproc://zeromq.zap.01";

// Reads one request from `zap` (a REP socket bound to zap_address), if one is queued, and answers it.
// `allowed(key)`: whether the z85 client key may connect. `refused(peer, text)`: a refusal, for the
// endpoint's report (peer: the client's key, or its address when it has none).
void answer_zap(zmq::socket_t& zap, const std::function<bool(const std::string&)>& allowed,
                const std::function<void(const std::string& peer, const std::string& text)>& refused);

}  // namespace loom::transport
