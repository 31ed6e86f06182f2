// runtime/transport/monitor.hpp: ZeroMQ socket monitors, as an endpoint reads them: the handshake events of
// every socket (and disconnects of the connections it opened), and the one-line reasons it gives for a
// failed handshake, from the side that sees it.
#pragma once

#include <zmq.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace loom::transport {

// The events an endpoint watches on every socket; a DEALER also watches ZMQ_EVENT_DISCONNECTED.
inline constexpr int handshake_events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                        ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

// Starts a monitor of `s` on inproc address `name` for `events` and returns the PAIR socket that reads it.
// Throws transport_error naming `what` (the address being bound or connected).
zmq::socket_t watch(zmq::context_t& ctx, zmq::socket_t& s, const std::string& name, int events,
                    const std::string& what);

struct monitor_event {
  std::uint16_t event = 0;
  std::uint32_t value = 0;
  std::string address;
};

// The next event, without waiting; nullopt when none is queued.
std::optional<monitor_event> read_monitor(zmq::socket_t& mon);

// A ZMTP protocol error code (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL's value) as words.
std::string protocol_error_text(std::uint32_t code);

// The connecting side's reason for a failed handshake: which side has keys, which key. `curve`: this side
// has keys; `role`: "worker b" and the like.
std::string client_protocol_text(bool curve, const std::string& role, std::uint32_t code);
// A peer that closes the connection mid-handshake sends no reason, and which of two happened is a race:
// a server without curve that reads this side's CURVE greeting first closes before this side reads its
// NULL one, and a curve server that cannot open this side's HELLO (sealed to the public key this side
// expects of it) closes too. Both are named, the likelier first.
std::string closed_in_handshake_text(bool curve, const std::string& role, const std::string& server_key);

}  // namespace loom::transport
