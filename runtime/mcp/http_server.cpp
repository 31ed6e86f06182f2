// runtime/mcp/http_server.cpp: Streamable HTTP, server side (see http_server.hpp).
#include "loom/runtime/mcp/http_server.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <random>

#include "loom/runtime/http/listener.hpp"
#include "loom/runtime/mcp/client.hpp"

namespace loom::mcp {
namespace {

using jsonrpc::json;
using clock = std::chrono::steady_clock;

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
  std::atomic<int> busy{0};                                  // requests (and their streams) being answered
  std::atomic<clock::rep> last_used{clock::now().time_since_epoch().count()};
  bool idle_since(clock::time_point t) const { return busy == 0 && clock::time_point(clock::duration(last_used)) <= t; }
};

// A request's hold on its session: not idle (so not expired nor evicted) until the answer is complete.
struct http_endpoint::use {
  explicit use(std::shared_ptr<session> s) : s(std::move(s)) { ++this->s->busy; }
  use(const use&) = delete;
  use& operator=(const use&) = delete;
  ~use() {
    s->last_used = clock::now().time_since_epoch().count();
    --s->busy;
  }
  std::shared_ptr<session> s;
};

http_endpoint::http_endpoint(tool_provider& tools, server_info info, http_endpoint_options options)
    : tools_(tools), info_(std::move(info)), options_(options) {}

http_endpoint::~http_endpoint() = default;

std::vector<std::shared_ptr<http_endpoint::session>> http_endpoint::sweep(bool room) {
  std::vector<std::shared_ptr<session>> ended;
  auto expired = clock::now() - options_.session_idle;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second->idle_since(expired)) {
      ended.push_back(std::move(it->second));
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  while (room && sessions_.size() >= options_.max_sessions) {
    auto lru = sessions_.end();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
      if (it->second->busy == 0 && (lru == sessions_.end() || it->second->last_used < lru->second->last_used)) lru = it;
    if (lru == sessions_.end()) break;  // every session has a call in flight
    ended.push_back(std::move(lru->second));
    sessions_.erase(lru);
  }
  return ended;
}

std::shared_ptr<http_endpoint::use> http_endpoint::find(const std::string& id) {
  std::vector<std::shared_ptr<session>> ended;  // destroyed after the lock: ending a session joins its calls
  std::lock_guard lock(mu_);
  ended = sweep(false);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : std::make_shared<use>(it->second);  // in use before the lock ends
}

void http_endpoint::attach(http::listener& l, const std::string& path) {
  l.server().Post(path, [this, &l](const httplib::Request& req, httplib::Response& res,
                                   const httplib::ContentReader& reader) {
    // Within --max-body and the body timeout (the listener's); then MCP's own limit on a message.
    auto body = l.read_body(reader);
    if (l.refuse_body(res, body)) return;
    if (body.text.size() > jsonrpc::max_message_bytes)
      return send_error(res, 413, nullptr, jsonrpc::invalid_request, "the message is over the size limit");
    std::string version = req.get_header_value("MCP-Protocol-Version");
    if (!version.empty() && std::find(protocol_versions.begin(), protocol_versions.end(), version) == protocol_versions.end())
      return send_error(res, 400, nullptr, jsonrpc::invalid_request,
                        fmt::format("unsupported MCP-Protocol-Version `{}`", version));
    jsonrpc::message m;
    try {
      m = jsonrpc::classify(jsonrpc::parse(body.text));
    } catch (const jsonrpc::error& e) {
      json id = e.data.is_object() && e.data.contains("id") ? e.data["id"] : json(nullptr);
      return send_error(res, 400, id, e.code, e.what());
    }
    std::shared_ptr<use> held;  // the session, in use (not idle: never swept) until the answer is complete
    if (m.type == jsonrpc::kind::request && m.method == "initialize") {
      std::vector<std::shared_ptr<session>> ended;  // destroyed after the lock
      std::lock_guard lock(mu_);
      ended = sweep(true);
      if (sessions_.size() >= options_.max_sessions) {
        res.set_header("Retry-After", "1");
        return send_error(res, 503, m.id, jsonrpc::internal_error,
                          fmt::format("too many MCP sessions with calls in flight (at most {}); retry later",
                                      options_.max_sessions));
      }
      std::string id = new_session_id();
      held = std::make_shared<use>(std::make_shared<session>(tools_, info_));
      sessions_[id] = held->s;
      res.set_header("Mcp-Session-Id", id);
    } else {
      std::string id = req.get_header_value("Mcp-Session-Id");
      if (id.empty())
        return send_error(res, 400, m.id, jsonrpc::invalid_request, "missing Mcp-Session-Id: initialize first");
      held = find(id);
      if (!held)
        return send_error(res, 404, m.id, jsonrpc::invalid_request,
                          "unknown or ended MCP session (sessions end after being idle): initialize again");
    }
    auto s = held->s;
    // A call's answer is a stream: it takes a stream slot before it starts, or is refused.
    std::shared_ptr<void> stream;
    if (m.type == jsonrpc::kind::request && m.method == "tools/call" && !(stream = l.open_stream())) {
      res.set_header("Retry-After", "1");
      return send_error(res, 503, m.id, jsonrpc::internal_error,
                        fmt::format("too many tool calls streaming at once (at most {}); retry later",
                                    l.options().max_streams));
    }
    auto box = std::make_shared<outbox>();
    auto out = [box](const json& msg) {
      std::lock_guard lock(box->mu);
      box->messages.push_back(msg);
      box->cv.notify_all();
    };
    s->rpc.handle(body.text, out);
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
    // While it streams, its session is in use (never idle) and its stream slot taken.
    auto keep = std::make_shared<std::pair<std::shared_ptr<use>, std::shared_ptr<void>>>(held, stream);
    res.set_chunked_content_provider("text/event-stream", [box, s, rid, keep](size_t, httplib::DataSink& sink) {
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
  l.server().Get(path, [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "POST, DELETE");
  });
  l.server().Delete(path, [this](const httplib::Request& req, httplib::Response& res) {
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
