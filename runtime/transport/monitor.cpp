// runtime/transport/monitor.cpp: reading socket monitors and naming why a handshake failed.
#include "loom/runtime/transport/monitor.hpp"

#include <fmt/format.h>

#include <cstring>

#include "loom/runtime/transport/endpoint.hpp"

namespace loom::transport {

zmq::socket_t watch(zmq::context_t& ctx, zmq::socket_t& s, const std::string& name, int events,
                    const std::string& what) {
  if (zmq_socket_monitor(s.handle(), name.c_str(), events) != 0)
    throw transport_error(fmt::format("cannot monitor {}: {}", what, zmq_strerror(zmq_errno())));
  zmq::socket_t mon(ctx, zmq::socket_type::pair);
  mon.connect(name);
  return mon;
}

std::optional<monitor_event> read_monitor(zmq::socket_t& mon) {
  zmq::message_t head;
  if (!mon.recv(head, zmq::recv_flags::dontwait)) return std::nullopt;
  monitor_event ev;
  if (head.size() >= 6) {
    std::memcpy(&ev.event, head.data(), 2);
    std::memcpy(&ev.value, static_cast<const char*>(head.data()) + 2, 4);
  }
  bool more = head.more();
  while (more) {  // v1 events: [event+value, address]
    zmq::message_t part;
    if (!mon.recv(part)) break;
    more = part.more();
    ev.address = part.to_string();
  }
  return ev;
}

std::string protocol_error_text(std::uint32_t code) {
  switch (code) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
      return "security mechanism mismatch (one side uses CurveZMQ keys, the other does not)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: return "cryptographic error (wrong server public key?)";
    case ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED:
    case ZMQ_PROTOCOL_ERROR_ZAP_MALFORMED_REPLY:
    case ZMQ_PROTOCOL_ERROR_ZAP_BAD_REQUEST_ID:
    case ZMQ_PROTOCOL_ERROR_ZAP_BAD_VERSION:
    case ZMQ_PROTOCOL_ERROR_ZAP_INVALID_STATUS_CODE:
    case ZMQ_PROTOCOL_ERROR_ZAP_INVALID_METADATA: return "authentication handler error";
    default: return fmt::format("ZMTP protocol error 0x{:x}", code);
  }
}

std::string client_protocol_text(bool curve, const std::string& role, std::uint32_t code) {
  if (code == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
    return curve ? fmt::format("security mechanism mismatch: this side uses CurveZMQ keys and {} runs without "
                               "keys (plain TCP: a worker started with --insecure)",
                               role)
                 : fmt::format("security mechanism mismatch: {} requires CurveZMQ keys and this side has none "
                               "(plain TCP: --insecure)",
                               role);
  return protocol_error_text(code);
}

std::string closed_in_handshake_text(bool curve, const std::string& role, const std::string& server_key) {
  if (curve)
    return fmt::format("{} closed the connection in the CurveZMQ handshake: it holds another key pair than this "
                       "side expects of it (public key {}: it runs with another host's or another user's keys), or "
                       "it runs without keys (plain TCP: a worker started with --insecure)",
                       role, server_key);
  return fmt::format("{} closed the connection in the handshake: {} requires CurveZMQ keys and this side has none "
                     "(plain TCP: --insecure)",
                     role, role);
}

}  // namespace loom::transport
