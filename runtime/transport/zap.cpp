// runtime/transport/zap.cpp: answering ZAP requests from an endpoint's allowed client keys.
#include "loom/runtime/transport/zap.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <vector>

namespace loom::transport {

void answer_zap(zmq::socket_t& zap, const std::function<bool(const std::string&)>& allowed,
                const std::function<void(const std::string& peer, const std::string& text)>& refused) {
  std::vector<zmq::message_t> req;
  while (true) {
    zmq::message_t m;
    if (!zap.recv(m, zmq::recv_flags::dontwait)) break;
    bool more = m.more();
    req.push_back(std::move(m));
    if (!more) break;
  }
  if (req.empty()) return;
  auto part = [&](std::size_t i) { return i < req.size() ? req[i].to_string() : std::string(); };
  std::string status = "400", text = "malformed ZAP request";
  std::string client_key;
  if (req.size() >= 7 && part(0) == "1.0" && part(5) == "CURVE" && req[6].size() == 32) {
    std::array<char, 41> z85{};
    zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(req[6].data()), 32);
    client_key = z85.data();
    if (allowed(client_key)) {
      status = "200";
      text = "OK";
    } else {
      text = "client key not allowed";
      refused(client_key, fmt::format("refused a client at {} with curve key {}: not in the allowed client keys",
                                      part(3), client_key));
    }
  } else if (req.size() >= 6 && part(0) == "1.0" && part(5) == "NULL") {
    text = "this endpoint requires CurveZMQ";
    refused(part(3), fmt::format("refused a client at {} without curve keys", part(3)));
  }
  std::array<std::string, 6> reply{"1.0", part(1), status, text, status == "200" ? client_key : "", ""};
  for (std::size_t i = 0; i < reply.size(); ++i)
    zap.send(zmq::buffer(reply[i]), i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

}  // namespace loom::transport
