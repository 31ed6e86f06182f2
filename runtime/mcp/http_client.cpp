// runtime/mcp/http_client.cpp: Streamable HTTP, client side (see http_client.hpp).
#include "loom/runtime/mcp/http_client.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "loom/runtime/json_reader.hpp"

namespace loom::mcp {
namespace {

// Reassembles server-sent events from chunks; each complete event's data is one message.
class sse_parser {
 public:
  template <typename F>
  void feed(std::string_view chunk, F&& on_event) {
    buf_.append(chunk);
    std::size_t nl;
    while ((nl = buf_.find('\n')) != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) {
        if (!data_.empty()) on_event(std::move(data_));
        data_.clear();
      } else if (line.rfind("data:", 0) == 0) {
        std::string_view d = std::string_view(line).substr(5);
        if (!d.empty() && d.front() == ' ') d.remove_prefix(1);
        if (!data_.empty()) data_ += '\n';
        data_ += d;
      }
      if (data_.size() > jsonrpc::max_message_bytes) throw transport_error("an SSE event is over the size limit");
    }
    if (buf_.size() > jsonrpc::max_message_bytes) throw transport_error("an SSE line is over the size limit");
  }

 private:
  std::string buf_, data_;
};

class http_client_transport final : public transport {
 public:
  explicit http_client_transport(const http_options& o) : o_(o) {
    static const std::regex url_re(R"(^(https?://[^/]+)(/.*)?$)");
    std::smatch m;
    if (!std::regex_match(o.url, m, url_re))
      throw transport_error(fmt::format("`{}` is not an http:// or https:// URL", o.url));
    base_ = m[1].str();
    path_ = m[2].matched ? m[2].str() : "/";
  }

  ~http_client_transport() override {
    // A POST waiting on a server that never answers is cut short: its socket is shut down. One stopped just
    // before its socket opened would not see the stop, so the stop is repeated until every POST has returned.
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    for (;;) {
      {
        std::lock_guard lock(mu_);
        for (auto* c : active_) c->stop();
        if (active_.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (auto& t : posts_) t.join();
    std::string session = session_id();
    if (!session.empty() && !aborted_) {  // end the session; the server may refuse (405), which is fine
      httplib::Client c(base_);
      c.set_connection_timeout(std::chrono::seconds(1));
      c.set_read_timeout(std::chrono::seconds(1));
      httplib::Headers h = headers();
      (void)c.Delete(path_, h);
    }
  }

  // The POSTs under way are cut (their sockets shut down) and receive() throws at once. A stopped run does
  // not end the session (DELETE): a server that never answers would hold the stop for a second.
  void abort() override {
    std::lock_guard lock(mu_);
    aborted_ = true;
    stopping_ = true;
    for (auto* c : active_) c->stop();
    cv_.notify_all();
  }

  void send(const jsonrpc::json& message) override {
    // Reap finished POSTs so a long session does not keep a thread per message.
    std::set<std::thread::id> done;
    {
      std::lock_guard lock(mu_);
      if (aborted_) throw transport_error(fmt::format("{}: cancelled (the run is stopping)", describe()));
      done.swap(done_posts_);
    }
    for (auto it = posts_.begin(); it != posts_.end();) {
      if (done.count(it->get_id()) != 0) {
        it->join();
        it = posts_.erase(it);
      } else {
        ++it;
      }
    }
    // Every POST runs on a thread of its own, so receive() keeps its deadline whatever the server does. The
    // session id of initialize's reply is known before the client sends anything else: it reads the reply
    // (which comes after the headers) before it sends `initialized`.
    std::string body = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    posts_.emplace_back([this, body = std::move(body)]() mutable { post(std::move(body)); });
  }

  std::optional<std::string> receive(clock::time_point deadline) override {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return !inbox_.empty() || !failure_.empty() || aborted_; });
    if (aborted_) throw transport_error(fmt::format("{}: cancelled (the run is stopping)", describe()));
    if (!inbox_.empty()) {
      std::string m = std::move(inbox_.front());
      inbox_.pop_front();
      return m;
    }
    if (!failure_.empty()) throw transport_error(fmt::format("{}: {}", describe(), failure_));
    return std::nullopt;
  }

  std::string describe() const override { return fmt::format("http server {}", o_.url); }

 private:
  httplib::Headers headers() {
    std::lock_guard lock(mu_);
    httplib::Headers h;
    for (const auto& [k, v] : o_.headers) h.emplace(k, v);
    if (!session_.empty()) h.emplace("Mcp-Session-Id", session_);
    if (!version_.empty()) h.emplace("MCP-Protocol-Version", version_);
    return h;
  }
  std::string session_id() {
    std::lock_guard lock(mu_);
    return session_;
  }

  void deliver(std::string text) {
    // The negotiated revision, from the initialize result, goes in a header of every later request.
    // Through the shared reader: a message it refuses has no version to read here, and jsonrpc::parse
    // refuses it again, with the reason, where the client takes it.
    nlohmann::json j;
    try {
      j = read_json_unordered(text, "message");
    } catch (const json_error&) {
    }
    std::lock_guard lock(mu_);
    if (j.is_object() && j.contains("result") && j["result"].is_object() && j["result"].contains("protocolVersion") &&
        j["result"]["protocolVersion"].is_string() && version_.empty())
      version_ = j["result"]["protocolVersion"].get<std::string>();
    inbox_.push_back(std::move(text));
    cv_.notify_all();
  }

  void fail(std::string why) {
    std::lock_guard lock(mu_);
    if (failure_.empty()) failure_ = std::move(why);
    cv_.notify_all();
  }

  void post(std::string body) {
    httplib::Client c(base_);
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      active_.insert(&c);
    }
    c.set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(o_.timeout) + std::chrono::seconds(1));
    c.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(o_.timeout) + std::chrono::seconds(1));
    c.set_write_timeout(std::chrono::seconds(30));
    httplib::Headers h = headers();
    h.emplace("Accept", "application/json, text/event-stream");
    std::string content_type, plain;
    int status = 0;
    sse_parser sse;
    std::string error;
    httplib::Request req;
    req.method = "POST";
    req.path = path_;
    req.headers = h;
    req.body = std::move(body);
    req.set_header("Content-Type", "application/json");
    req.response_handler = [&](const httplib::Response& r) {
      status = r.status;
      content_type = r.get_header_value("Content-Type");
      std::string sid = r.get_header_value("Mcp-Session-Id");
      if (!sid.empty()) {
        std::lock_guard lock(mu_);
        session_ = sid;
      }
      return true;
    };
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      if (stopping_) return false;
      try {
        if (status >= 200 && status < 300 && content_type.find("text/event-stream") != std::string::npos) {
          sse.feed(std::string_view(data, len), [&](std::string event) { deliver(std::move(event)); });
        } else {
          plain.append(data, len);
          if (plain.size() > jsonrpc::max_message_bytes) throw transport_error("a response is over the size limit");
        }
      } catch (const transport_error& e) {
        error = e.what();
        return false;
      }
      return true;
    };
    auto res = c.send(req);
    if (!error.empty()) fail(error);
    else if (!res && !stopping_) fail(fmt::format("POST failed: {}", httplib::to_string(res.error())));
    else if (res && (status < 200 || status >= 300)) fail(fmt::format("HTTP {}: {}", status, plain.substr(0, 300)));
    else if (res && content_type.find("application/json") != std::string::npos && !plain.empty()) deliver(plain);
    std::lock_guard lock(mu_);
    active_.erase(&c);
    done_posts_.insert(std::this_thread::get_id());
  }

  http_options o_;
  std::string base_, path_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> inbox_;
  std::string failure_, session_, version_;
  std::atomic<bool> stopping_{false};
  bool aborted_ = false;  // guarded by mu_
  std::vector<std::thread> posts_;
  std::set<std::thread::id> done_posts_;
  std::set<httplib::Client*> active_;  // POSTs under way
};

}  // namespace

std::unique_ptr<transport> make_http_client_transport(const http_options& o) {
  return std::make_unique<http_client_transport>(o);
}

}  // namespace loom::mcp
