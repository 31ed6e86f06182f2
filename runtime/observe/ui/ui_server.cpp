// runtime/observe/ui/ui_server.cpp: the live view's HTTP server (cpp-httplib), its snapshots and log ring.
#include "loom/runtime/observe/ui/ui_server.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>

#include <charconv>
#include <ctime>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <variant>

#include "loom/runtime/http/decision_body.hpp"
#include "loom/runtime/http/listener.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/node.hpp"
#include "loom/runtime/observe/ui/page_files.hpp"

namespace loom::observe::ui {
namespace {

using json = nlohmann::json;

// The last `capacity` log lines, for the page.
class ring_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ring_sink(std::size_t capacity) : capacity_(capacity) {
    set_formatter(std::make_unique<spdlog::pattern_formatter>("[%H:%M:%S] %l: %v", spdlog::pattern_time_type::local,
                                                              std::string()));
  }
  void add(std::string line) {
    std::lock_guard lock{mutex_};
    push(std::move(line));
  }
  std::vector<std::string> lines() {
    std::lock_guard lock{mutex_};
    return {lines_.begin(), lines_.end()};
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t text;
    formatter_->format(msg, text);
    push(std::string(text.data(), text.size()));
  }
  void flush_() override {}

 private:
  void push(std::string line) {  // mutex_ held
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    lines_.push_back(std::move(line));
    while (lines_.size() > capacity_) lines_.pop_front();
  }
  std::size_t capacity_;
  std::deque<std::string> lines_;
};

const char* state_name(local::run_report::outcome o) {
  switch (o) {
    case local::run_report::outcome::ok: return "ok";
    case local::run_report::outcome::failed: return "failed";
    case local::run_report::outcome::interrupted: return "interrupted";
    case local::run_report::outcome::paused: return "paused";
  }
  return "failed";
}

// "a.out -> b.in": the ports of a report's edge label, given its two nodes.
std::pair<std::string_view, std::string_view> label_ports(std::string_view label, const std::string& from,
                                                          const std::string& to) {
  std::string_view from_port, to_port;
  auto arrow = label.find(" -> ");
  if (arrow == std::string_view::npos) return {};
  auto left = label.substr(0, arrow), right = label.substr(arrow + 4);
  if (left.size() > from.size() && left.starts_with(from) && left[from.size()] == '.') from_port = left.substr(from.size() + 1);
  if (right.size() > to.size() && right.starts_with(to) && right[to.size()] == '.') to_port = right.substr(to.size() + 1);
  return {from_port, to_port};
}

}  // namespace

void parse_address(const std::string& text, ui_options& o) {
  auto colon = text.rfind(':');
  std::string host = colon == std::string::npos ? std::string() : text.substr(0, colon);
  std::string port = colon == std::string::npos ? text : text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int value = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 0 || value > 65535)
    throw std::invalid_argument(
        fmt::format("--ui `{}`: expected PORT, :PORT or HOST:PORT with a port from 0 to 65535 (0: any free port)", text));
  if (!host.empty()) o.host = host;
  o.port = value;
}

struct ui_server::impl {
  graph::graph g;
  ui_options options;
  std::string svg;
  std::shared_ptr<ring_sink> ring;

  // The graph, indexed once.
  std::unordered_map<std::string, std::size_t> node_of;
  std::vector<std::uint64_t> in_capacity;  // per node instance: the credits of all its input links
  std::vector<bool> has_inputs;

  // publish(): one caller at a time (the progress tick, then the run's end).
  std::mutex publish_mutex;
  std::unordered_map<std::string, int> edge_of_label;  // a report's label -> graph edge (-1: none)
  std::vector<std::uint64_t> previous;                 // per node: the count its rate is taken from
  std::vector<double> rates;
  double previous_seconds = 0;

  // The latest snapshot, and the /events streams waiting for it.
  mutable std::mutex m;
  std::condition_variable cv;
  std::shared_ptr<const std::string> latest;
  std::uint64_t seq = 0;
  bool stopping = false;
  std::map<std::uint64_t, std::uint64_t> streams;  // stream -> the seq it sent last
  std::uint64_t next_stream = 0;

  // Decisions (set_decisions): what the page shows and where a click goes.
  mutable std::mutex decisions_mutex;
  decision_hooks decisions;

  json pending_decisions() const {
    decision_hooks h;
    {
      std::lock_guard lock{decisions_mutex};
      h = decisions;
    }
    json out = json::array();
    if (!h.pending) return out;
    for (const auto& d : h.pending()) {
      json shown;
      try {
        shown = read_json_unordered(d.shown, "a decision's shown value");
      } catch (const std::exception&) {
        shown = d.shown;
      }
      out.push_back({{"node", d.node}, {"instance", d.instance}, {"id", d.id}, {"shown", std::move(shown)},
                     {"asked_unix_ms", d.asked_unix_ms}, {"deadline_unix_ms", d.deadline_unix_ms}});
    }
    return out;
  }

  std::unique_ptr<http::listener> door;  // made by start()
  int port = -1;

  int edge_index(const local::edge_stats& es) {
    auto [it, fresh] = edge_of_label.try_emplace(es.label, -1);
    if (!fresh) return it->second;
    auto [from_port, to_port] = label_ports(es.label, es.from_node, es.to);
    int best = -1, best_score = -1;
    for (std::size_t i = 0; i < g.edges.size(); ++i) {
      const auto& e = g.edges[i];
      if (e.from.node != es.from_node || e.to.node != es.to) continue;
      if (!e.from.port.empty() && e.from.port != from_port) continue;
      if (!e.to.port.empty() && e.to.port != to_port) continue;
      int score = (e.from.port.empty() ? 0 : 1) + (e.to.port.empty() ? 0 : 1);  // explicit ports match first
      if (score > best_score) best = static_cast<int>(i), best_score = score;
    }
    return it->second = best;
  }

  std::string make_snapshot(const local::run_report& r, const std::string& state) {
    struct totals {
      std::uint64_t in = 0, out = 0, queued = 0, restarts = 0, dropped = 0, busy_ns = 0;
    };
    std::vector<totals> t(g.nodes.size());
    for (const auto& s : r.nodes) {
      auto it = node_of.find(s.node);
      if (it == node_of.end()) continue;
      auto& x = t[it->second];
      x.in += s.in, x.out += s.out, x.queued += s.queued, x.restarts += s.restarts, x.dropped += s.dropped;
      x.busy_ns += s.busy_ns;
    }
    double dt = r.seconds - previous_seconds;
    json nodes = json::array();
    for (std::size_t i = 0; i < g.nodes.size(); ++i) {
      const auto& n = g.nodes[i];
      auto count = has_inputs[i] ? t[i].in : t[i].out;
      if (dt > 0) rates[i] = static_cast<double>(count - std::min(count, previous[i])) / dt;
      previous[i] = count;
      auto capacity = in_capacity[i] * static_cast<std::uint64_t>(std::max(1, n.replicas));
      double fill = capacity ? std::min(1.0, static_cast<double>(t[i].queued) / static_cast<double>(capacity)) : 0.0;
      nodes.push_back({{"id", fmt::format("n{}", i)}, {"name", n.name}, {"kind", n.kind}, {"replicas", n.replicas},
                       {"in", t[i].in}, {"out", t[i].out}, {"rate", rates[i]}, {"queued", t[i].queued},
                       {"capacity", capacity}, {"fill", fill}, {"restarts", t[i].restarts},
                       {"dropped", t[i].dropped}, {"busy_ms", static_cast<double>(t[i].busy_ns) / 1e6}});
    }
    if (dt > 0) previous_seconds = r.seconds;
    std::vector<bool> blocked(g.edges.size());
    std::vector<std::uint64_t> blocked_ns(g.edges.size());
    for (const auto& es : r.edges) {
      auto i = edge_index(es);
      if (i < 0) continue;
      blocked[static_cast<std::size_t>(i)] = blocked[static_cast<std::size_t>(i)] || es.blocked;
      blocked_ns[static_cast<std::size_t>(i)] += es.blocked_ns;
    }
    json edges = json::array();
    for (std::size_t i = 0; i < g.edges.size(); ++i) {
      const auto& e = g.edges[i];
      edges.push_back({{"id", fmt::format("e{}", i)}, {"label", e.from.str() + " -> " + e.to.str()},
                       {"capacity", g.capacity_of(e)}, {"blocked", static_cast<bool>(blocked[i])},
                       {"blocked_ms", static_cast<double>(blocked_ns[i]) / 1e6}});
    }
    json out{{"graph", g.name}, {"seconds", r.seconds}, {"state", state}, {"error", r.error},
             {"nodes", std::move(nodes)}, {"edges", std::move(edges)}, {"hosts", options.hosts},
             {"log", ring->lines()}, {"decisions", pending_decisions()}};
    return out.dump(-1, ' ', false, json::error_handler_t::replace);
  }

  void put(const local::run_report& r, const std::string& state) {
    std::string text;
    {
      std::lock_guard lock{publish_mutex};
      text = make_snapshot(r, state);
    }
    {
      std::lock_guard lock{m};
      ++seq;
      // "seq" goes first, so that a reader sees which snapshot it holds without parsing the rest.
      latest = std::make_shared<const std::string>(fmt::format("{{\"seq\":{},{}", seq, std::string_view(text).substr(1)));
    }
    cv.notify_all();
  }
};

ui_server::ui_server(const graph::graph& g, ui_options options) : impl_(std::make_unique<impl>()) {
  auto& x = *impl_;
  x.g = g;
  x.options = std::move(options);
  x.ring = std::make_shared<ring_sink>(std::max<std::size_t>(1, x.options.log_lines));
  x.svg = render_svg(ui_dot(g, x.options.hosts));
  for (std::size_t i = 0; i < g.nodes.size(); ++i) x.node_of.emplace(g.nodes[i].name, i);
  x.in_capacity.assign(g.nodes.size(), 0);
  x.has_inputs.assign(g.nodes.size(), false);
  x.previous.assign(g.nodes.size(), 0);
  x.rates.assign(g.nodes.size(), 0.0);
  for (const auto& e : g.edges) {
    auto to = x.node_of.find(e.to.node), from = x.node_of.find(e.from.node);
    if (to == x.node_of.end() || from == x.node_of.end()) continue;
    x.has_inputs[to->second] = true;
    x.in_capacity[to->second] += static_cast<std::uint64_t>(g.capacity_of(e)) *
                                 static_cast<std::uint64_t>(std::max(1, g.nodes[from->second].replicas));
  }
  x.put(local::run_report{}, "starting");
}

ui_server::~ui_server() {
  auto& x = *impl_;
  if (x.door) {
    // Let open streams send the last snapshot (the run's end) before they close: at most half a second.
    {
      std::unique_lock lock{x.m};
      x.cv.wait_for(lock, std::chrono::milliseconds(500), [&] {
        for (const auto& [id, sent] : x.streams)
          if (sent != x.seq) return false;
        return true;
      });
      x.stopping = true;
    }
    x.cv.notify_all();
    x.door->stop();
  }
}

int ui_server::start() {
  auto& x = *impl_;
  // A page for a browser: Host is checked on every path (DNS rebinding); it runs nothing, so no key. Each
  // open tab holds one of the stream slots with its /events, beside the threads that answer the rest.
  http::listener_options lo;
  lo.name = "the live view";
  lo.host = x.options.host;
  lo.port = x.options.port;
  lo.threads = 8;
  lo.max_streams = x.options.max_streams;
  lo.max_body = 64 * 1024;  // POST /decide: a decision, an edited value at most this long
  lo.idle_timeout = std::chrono::seconds(1);  // an idle connection holds a thread (and the stop) at most this long
  lo.browser_facing = [](std::string_view) { return true; };
  lo.allowed_hosts = x.options.allowed_hosts;
  x.door = std::make_unique<http::listener>(std::move(lo));
  auto& http = x.door->server();
  auto page = [](std::string_view path, httplib::Response& res) {
    for (const auto& f : page_files())
      if (f.path == path) {
        res.set_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'");
        res.set_header("Cache-Control", "no-cache");
        res.set_content(std::string(f.data), std::string(f.content_type));
        return;
      }
    res.status = 404;
  };
  http.Get("/", [page](const httplib::Request&, httplib::Response& res) { page("/index.html", res); });
  for (const auto& f : page_files())
    http.Get(std::string(f.path), [page, path = f.path](const httplib::Request&, httplib::Response& res) {
      page(path, res);
    });
  http.Get("/graph.svg", [&x](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_content(x.svg, "image/svg+xml");
  });
  http.Get("/snapshot", [&x](const httplib::Request&, httplib::Response& res) {
    std::shared_ptr<const std::string> s;
    {
      std::lock_guard lock{x.m};
      s = x.latest;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_content(*s, "application/json");
  });
  http.Get("/decisions", [&x](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_content(x.pending_decisions().dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  });
  // A click on Approve, Reject or Edit: recorded where `loom approve` records it (the run's state file).
  http.Post("/decide", [&x](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
    auto body = x.door->read_body(reader);
    if (x.door->refuse_body(res, body)) return;
    decision_hooks h;
    {
      std::lock_guard lock{x.decisions_mutex};
      h = x.decisions;
    }
    if (!h.decide) return x.door->refuse(res, 404, "this run takes no decisions (no human.approve, or no --state)");
    // The body as every door that takes a decision reads it (runtime/http/decision_body.hpp); a decision
    // named by its node is found among the pending ones.
    auto parsed = http::parse_decision_body(body.text);
    if (auto* e = std::get_if<std::string>(&parsed)) return x.door->refuse(res, 400, *e);
    auto& d = std::get<http::decision_body>(parsed);
    if (!d.instance && h.pending)
      for (const auto& p : h.pending())
        if (p.node == d.node && p.id == d.id) d.instance = p.instance;
    if (!d.instance) return x.door->refuse(res, 409, fmt::format("node `{}` has no pending decision {}", d.node, d.id));
    auto instance = *d.instance;
    auto id = d.id;
    const auto& verdict = d.verdict;
    auto value_json = d.value_json.value_or("");
    const auto& reason = d.reason;
    auto why = h.decide(instance, id, verdict, value_json, reason);
    if (!why.empty()) return x.door->refuse(res, 409, why);
    res.set_content(R"({"recorded":true})", "application/json");
  });
  http.Get("/events", [&x](const httplib::Request&, httplib::Response& res) {
    auto slot = x.door->open_stream();
    if (!slot)
      return x.door->refuse(res, 503,
                            fmt::format("the live view has {} pages open, as many as it streams to; close one and "
                                        "reload",
                                        x.options.max_streams));
    res.set_header("Cache-Control", "no-cache");
    std::uint64_t id;
    {
      std::lock_guard lock{x.m};
      id = x.next_stream++;
      x.streams.emplace(id, 0);
    }
    res.set_chunked_content_provider(
        "text/event-stream",
        [&x, id](std::size_t, httplib::DataSink& sink) {
          std::shared_ptr<const std::string> frame;
          {
            std::unique_lock lock{x.m};
            auto& sent = x.streams[id];
            x.cv.wait_for(lock, std::chrono::milliseconds(250), [&] { return x.stopping || sent != x.seq; });
            if (x.stopping) {
              sink.done();
              return true;
            }
            if (sent == x.seq) return true;  // nothing new yet: httplib calls again
            frame = x.latest;
            sent = x.seq;
          }
          // Only the newest snapshot is sent: a reader slower than the ticks skips frames.
          std::string event = "data: " + *frame + "\n\n";
          return sink.write(event.data(), event.size());
        },
        [&x, id, slot](bool) {
          {
            std::lock_guard lock{x.m};
            x.streams.erase(id);
          }
          x.cv.notify_all();
        });
  });
  try {
    x.port = x.door->bind();
  } catch (...) {
    x.door.reset();
    throw;
  }
  x.door->start();
  return x.port;
}

std::string ui_server::url() const {
  auto host = impl_->options.host.find(':') != std::string::npos ? "[" + impl_->options.host + "]" : impl_->options.host;
  return fmt::format("http://{}:{}/", host, impl_->port);
}

void ui_server::publish(const local::run_report& r) { impl_->put(r, "running"); }

void ui_server::publish(const local::run_report& r, const std::string& state) { impl_->put(r, state); }

void ui_server::set_decisions(decision_hooks hooks) {
  std::lock_guard lock{impl_->decisions_mutex};
  impl_->decisions = std::move(hooks);
}

void ui_server::finish(const local::run_report& r) { impl_->put(r, state_name(r.result)); }

void ui_server::log(std::string line) {
  char stamp[16];
  auto t = std::time(nullptr);
  tm local{};
  localtime_r(&t, &local);
  std::strftime(stamp, sizeof stamp, "[%H:%M:%S] ", &local);
  impl_->ring->add(stamp + std::move(line));
}

std::shared_ptr<spdlog::sinks::sink> ui_server::log_sink() const { return impl_->ring; }

const std::string& ui_server::svg() const { return impl_->svg; }

std::string ui_server::snapshot() const {
  std::lock_guard lock{impl_->m};
  return *impl_->latest;
}

}  // namespace loom::observe::ui
