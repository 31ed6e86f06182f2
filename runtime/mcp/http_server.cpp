// runtime/mcp/http_server.cpp: Streamable HTTP, server side (see http_server.hpp).
#include "runtime/mcp/http_server.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <random>

#include "runtime/mcp/client.hpp"

namespace loom::mcp {
namespace {

using jsonrpc::json;

// Messages a request's handling produces, handed to the HTTP response as they come.
struct outbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<json> messages;
};

std::string new_session_id() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(mu);
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

void send_error(httplib::Response& res, int status, const json& id, int code, const std::string& message) {
  res.status = status;
  res.set_content(jsonrpc::error_response(id, code, message).dump(), "application/json");
}

}  // namespace

struct http_endpoint::session {
  explicit session(tool_provider& t, const server_info& i) : rpc(t, i) {}
  server rpc;
};

http_endpoint::http_endpoint(tool_provider& tools, server_info info, std::size_t max_sessions)
    : tools_(tools), info_(std::move(info)), max_sessions_(max_sessions) {}

http_endpoint::~http_endpoint() = default;

std::shared_ptr<http_endpoint::session> http_endpoint::find(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

void http_endpoint::attach(httplib::Server& http, const std::string& path) {
  http.Post(path, [this](const httplib::Request& req, httplib::Response& res) {
    if (req.body.size() > jsonrpc::max_message_bytes)
      return send_error(res, 413, nullptr, jsonrpc::invalid_request, "the message is over the size limit");
    std::string version = req.get_header_value("MCP-Protocol-Version");
    if (!version.empty() && std::find(protocol_versions.begin(), protocol_versions.end(), version) == protocol_versions.end())
      return send_error(res, 400, nullptr, jsonrpc::invalid_request,
                        fmt::format("unsupported MCP-Protocol-Version `{}`", version));
    jsonrpc::message m;
    try {
      m = jsonrpc::classify(jsonrpc::parse(req.body));
    } catch (const jsonrpc::error& e) {
      json id = e.data.is_object() && e.data.contains("id") ? e.data["id"] : json(nullptr);
      return send_error(res, 400, id, e.code, e.what());
    }
    std::shared_ptr<session> s;
    if (m.type == jsonrpc::kind::request && m.method == "initialize") {
      std::lock_guard lock(mu_);
      if (sessions_.size() >= max_sessions_)
        return send_error(res, 503, m.id, jsonrpc::internal_error,
                          fmt::format("too many MCP sessions (at most {}); end one with DELETE", max_sessions_));
      std::string id = new_session_id();
      s = std::make_shared<session>(tools_, info_);
      sessions_[id] = s;
      res.set_header("Mcp-Session-Id", id);
    } else {
      std::string id = req.get_header_value("Mcp-Session-Id");
      if (id.empty())
        return send_error(res, 400, m.id, jsonrpc::invalid_request, "missing Mcp-Session-Id: initialize first");
      s = find(id);
      if (!s) return send_error(res, 404, m.id, jsonrpc::invalid_request, "unknown or ended MCP session");
    }
    auto box = std::make_shared<outbox>();
    auto out = [box](const json& msg) {
      std::lock_guard lock(box->mu);
      box->messages.push_back(msg);
      box->cv.notify_all();
    };
    s->rpc.handle(req.body, out);
    if (m.type != jsonrpc::kind::request) {
      res.status = 202;
      return;
    }
    {
      std::lock_guard lock(box->mu);
      const json* first = box->messages.empty() ? nullptr : &box->messages.front();
      if (box->messages.size() == 1 && first->contains("id") && (*first)["id"] == m.id && !first->contains("method")) {
        res.set_content(first->dump(), "application/json");  // answered at once: everything but tools/call
        return;
      }
    }
    // A call runs on its own thread: stream its progress and its result as server-sent events.
    json rid = m.id;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [box, s, rid](size_t, httplib::DataSink& sink) {
      std::unique_lock lock(box->mu);
      box->cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return !box->messages.empty(); });
      while (!box->messages.empty()) {
        json msg = std::move(box->messages.front());
        box->messages.pop_front();
        std::string event = "event: message\ndata: " + msg.dump() + "\n\n";
        if (!sink.write(event.data(), event.size())) {
          lock.unlock();
          s->rpc.handle(jsonrpc::notification("notifications/cancelled", json{{"requestId", rid}}).dump(),
                        [](const json&) {});
          return false;
        }
        if (msg.contains("id") && msg["id"] == rid && !msg.contains("method")) {
          sink.done();
          return true;
        }
      }
      lock.unlock();
      if (!sink.is_writable()) {  // the client went away: cancel its call
        s->rpc.handle(jsonrpc::notification("notifications/cancelled", json{{"requestId", rid}}).dump(),
                      [](const json&) {});
        return false;
      }
      if (!s->rpc.in_flight(rid)) {
        std::lock_guard again(box->mu);
        if (box->messages.empty()) sink.done();  // cancelled: no result will come
      }
      return true;
    });
  });
  http.Get(path, [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "POST, DELETE");
  });
  http.Delete(path, [this](const httplib::Request& req, httplib::Response& res) {
    std::shared_ptr<session> gone;
    {
      std::lock_guard lock(mu_);
      auto it = sessions_.find(req.get_header_value("Mcp-Session-Id"));
      if (it == sessions_.end()) {
        res.status = 404;
        return;
      }
      gone = std::move(it->second);
      sessions_.erase(it);
    }
    res.status = 200;  // `gone` cancels and joins its calls as it is destroyed, outside the lock
  });
}

}  // namespace loom::mcp
