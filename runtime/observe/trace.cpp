// runtime/observe/trace.cpp: the per-run tracer, W3C traceparent, and the two writers (Chrome trace-event
// JSON, OTLP/HTTP JSON with its POST).
#include "loom/runtime/observe/trace.hpp"

#include "loom/runtime/json_reader.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "loom/runtime/observe/metrics.hpp"

namespace loom::observe {
namespace {

using json = nlohmann::ordered_json;

std::int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
std::int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint64_t entropy64() {
  static thread_local std::random_device rd;
  std::uint64_t v = 0;
  while (v == 0) v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return v;
}

bool parse_hex(std::string_view s, std::uint64_t& out) {
  out = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return false;  // W3C: lowercase only
    out = (out << 4) | static_cast<std::uint64_t>(d);
  }
  return true;
}

json attr_json(const attr& a) {
  json v;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::int64_t>)
          v = json{{"intValue", std::to_string(x)}};
        else if constexpr (std::is_same_v<T, double>)
          v = json{{"doubleValue", x}};
        else if constexpr (std::is_same_v<T, bool>)
          v = json{{"boolValue", x}};
        else
          v = json{{"stringValue", x}};
      },
      a.value);
  return json{{"key", a.key}, {"value", std::move(v)}};
}

json plain_json(const attr_value& a) {
  return std::visit([](const auto& x) { return json(x); }, a);
}

std::string span_name(const span& s) { return s.name.empty() ? to_string(s.kind) : s.name; }

}  // namespace

std::string to_hex(std::uint64_t v) { return fmt::format("{:016x}", v); }
std::string to_hex(const trace_id& t) { return fmt::format("{:016x}{:016x}", t.hi, t.lo); }

std::string to_traceparent(const span_context& c) {
  return fmt::format("00-{}-{}-01", to_hex(c.trace), to_hex(c.span));
}

std::optional<span_context> parse_traceparent(std::string_view h) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 (longer for future versions)
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  std::uint64_t version = 0, flags = 0;
  if (!parse_hex(h.substr(0, 2), version) || version == 0xff) return std::nullopt;
  if (version == 0 && h.size() != 55) return std::nullopt;
  if (h.size() > 55 && h[55] != '-') return std::nullopt;
  span_context c;
  if (!parse_hex(h.substr(3, 16), c.trace.hi) || !parse_hex(h.substr(19, 16), c.trace.lo) ||
      !parse_hex(h.substr(36, 16), c.span) || !parse_hex(h.substr(53, 2), flags))
    return std::nullopt;
  if (!c.trace.valid() || c.span == 0) return std::nullopt;
  return c;
}

trace_id random_trace_id() { return trace_id{entropy64(), entropy64()}; }
std::uint64_t random_span_id() { return entropy64(); }

rng::rng() : s_(entropy64()) {}

std::uint64_t rng::next() {
  // splitmix64
  for (;;) {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    if (z != 0) return z;
  }
}

const char* to_string(span_kind k) {
  switch (k) {
    case span_kind::run: return "run";
    case span_kind::batch: return "batch";
    case span_kind::pull: return "pull";
    case span_kind::call: return "call";
    case span_kind::tool: return "tool";
    case span_kind::model: return "chat";
    case span_kind::request: return "request";
  }
  return "?";
}

// -- span_buffer ------------------------------------------------------------------------------------------

span_buffer::span_buffer(tracer& t, std::uint32_t track) : tracer_(&t), track_(track) { spans_.reserve(256); }

std::int64_t span_buffer::now_ns() const { return unix_now_ns(); }

std::int64_t span_buffer::unix_ns(std::chrono::steady_clock::time_point t) const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count() +
         tracer_->unix_minus_steady_ns();
}

span_context span_buffer::context(std::uint64_t parent) const {
  auto p = parent != 0 ? parent : current;
  return {tracer_->trace(), p != 0 ? p : tracer_->root()};
}

// -- tracer -----------------------------------------------------------------------------------------------

tracer::tracer(std::string host) : tracer(std::move(host), span_context{random_trace_id(), 0}) {}

tracer::tracer(std::string host, span_context parent)
    : host_(std::move(host)),
      trace_(parent.trace.valid() ? parent.trace : random_trace_id()),
      root_(random_span_id()),
      root_parent_(parent.span),
      start_ns_(unix_now_ns()),
      unix_minus_steady_(unix_now_ns() - steady_now_ns()) {}

span_buffer& tracer::buffer(std::uint32_t track, std::string name) {
  std::lock_guard lock(m_);
  buffers_.push_back(std::make_unique<span_buffer>(*this, track));
  names_.emplace_back(track, std::move(name));
  return *buffers_.back();
}

host_spans tracer::finish(std::string_view graph, span_kind kind) {
  std::lock_guard lock(m_);
  if (!finished_) {
    finished_ = true;
    run_name_ = std::string(graph);
    run_kind_ = kind;
    host_spans h;
    h.host = host_;
    std::sort(names_.begin(), names_.end());
    names_.erase(std::unique(names_.begin(), names_.end(),
                             [](const auto& a, const auto& b) { return a.first == b.first; }),
                 names_.end());
    h.tracks = names_;
    span root;
    root.id = root_;
    root.parent = root_parent_;
    root.kind = kind;
    root.track = run_track;
    root.start_ns = start_ns_;
    root.end_ns = unix_now_ns();
    root.name = run_name_.empty() ? std::string(to_string(kind)) : fmt::format("{} {}", to_string(kind), run_name_);
    root.attrs.push_back({"loom.host", host_});
    h.spans.push_back(std::move(root));
    for (auto& b : buffers_)
      for (auto& s : b->spans_) {
        if (s.parent == 0) s.parent = root_;
        h.spans.push_back(std::move(s));
      }
    for (auto& b : buffers_) b->spans_.clear();
    hosts_.insert(hosts_.begin(), std::move(h));
  }
  return hosts_.front();
}

void tracer::add_host(host_spans h) {
  std::lock_guard lock(m_);
  hosts_.push_back(std::move(h));
}

const std::vector<host_spans>& tracer::hosts() {
  finish(run_name_, run_kind_);
  return hosts_;
}

// -- shipping a host's spans ------------------------------------------------------------------------------

std::string to_json(const host_spans& h) {
  json tracks = json::array();
  for (const auto& [t, name] : h.tracks) tracks.push_back(json::array({t, name}));
  json spans = json::array();
  for (const auto& s : h.spans) {
    json attrs = json::array();
    for (const auto& a : s.attrs) {
      auto v = plain_json(a.value);
      // Keep the type: an integer stays an integer, a float a float.
      attrs.push_back(json::array({a.key, std::holds_alternative<double>(a.value) ? "f" : "", std::move(v)}));
    }
    spans.push_back({{"id", to_hex(s.id)}, {"parent", to_hex(s.parent)}, {"kind", static_cast<int>(s.kind)},
                     {"track", s.track}, {"start", s.start_ns}, {"end", s.end_ns}, {"count", s.count},
                     {"name", s.name}, {"attrs", std::move(attrs)}, {"error", s.error}});
  }
  return json{{"host", h.host}, {"tracks", std::move(tracks)}, {"spans", std::move(spans)}}.dump();
}

host_spans host_spans_from_json(std::string_view text) {
  auto bad = [](const std::string& what) { return std::invalid_argument("spans from a worker: " + what); };
  json j;
  try {
    json_limits limits;
    limits.max_bytes = text.size();  // bounded by the wire's frame limit
    j = read_json(text, "spans", limits);
  } catch (const json_error& e) {
    throw bad(e.what());
  }
  if (!j.is_object()) throw bad("not a JSON object");
  auto get = [&](const json& o, const char* key, json::value_t type) -> const json& {
    if (!o.contains(key)) throw bad(fmt::format("no `{}`", key));
    const auto& v = o[key];
    bool ok = v.type() == type || (type == json::value_t::number_integer && v.is_number_integer()) ||
              (type == json::value_t::number_unsigned && v.is_number_unsigned());
    if (!ok) throw bad(fmt::format("`{}` has the wrong type", key));
    return v;
  };
  auto hex = [&](const json& o, const char* key) {
    const auto& v = get(o, key, json::value_t::string);
    std::uint64_t out = 0;
    auto s = v.get<std::string>();
    if (s.size() != 16 || !parse_hex(s, out)) throw bad(fmt::format("`{}` is not 16 hex digits", key));
    return out;
  };
  host_spans h;
  h.host = get(j, "host", json::value_t::string).get<std::string>();
  for (const auto& t : get(j, "tracks", json::value_t::array)) {
    if (!t.is_array() || t.size() != 2 || !t[0].is_number_unsigned() || !t[1].is_string()) throw bad("a bad track");
    h.tracks.emplace_back(t[0].get<std::uint32_t>(), t[1].get<std::string>());
  }
  for (const auto& o : get(j, "spans", json::value_t::array)) {
    if (!o.is_object()) throw bad("a span is not an object");
    span s;
    s.id = hex(o, "id");
    s.parent = hex(o, "parent");
    auto kind = get(o, "kind", json::value_t::number_integer).get<int>();
    if (kind < 0 || kind > static_cast<int>(span_kind::request)) throw bad(fmt::format("span kind {}", kind));
    s.kind = static_cast<span_kind>(kind);
    s.track = get(o, "track", json::value_t::number_unsigned).get<std::uint32_t>();
    s.start_ns = get(o, "start", json::value_t::number_integer).get<std::int64_t>();
    s.end_ns = get(o, "end", json::value_t::number_integer).get<std::int64_t>();
    s.count = get(o, "count", json::value_t::number_integer).get<std::int64_t>();
    s.name = get(o, "name", json::value_t::string).get<std::string>();
    s.error = get(o, "error", json::value_t::boolean).get<bool>();
    for (const auto& a : get(o, "attrs", json::value_t::array)) {
      if (!a.is_array() || a.size() != 3 || !a[0].is_string()) throw bad("a bad attribute");
      attr x{a[0].get<std::string>(), std::int64_t{0}};
      const auto& v = a[2];
      if (v.is_boolean())
        x.value = v.get<bool>();
      else if (v.is_number_integer() && a[1] != "f")
        x.value = v.get<std::int64_t>();
      else if (v.is_number())
        x.value = v.get<double>();
      else if (v.is_string())
        x.value = v.get<std::string>();
      else
        throw bad(fmt::format("attribute `{}` has the wrong type", x.key));
      s.attrs.push_back(std::move(x));
    }
    h.spans.push_back(std::move(s));
  }
  return h;
}

// -- Chrome trace events ----------------------------------------------------------------------------------

std::string chrome_json(tracer& t) {
  const auto& hosts = t.hosts();
  // Times in microseconds from the driver's run start, so the viewer opens on the run.
  std::int64_t origin = hosts.front().spans.empty() ? 0 : hosts.front().spans.front().start_ns;
  auto us = [&](std::int64_t ns, std::int64_t offset) { return static_cast<double>(ns - offset - origin) / 1000.0; };
  json events = json::array();
  struct where {
    int pid;
    std::uint32_t tid;
    std::int64_t start, end;
  };
  std::unordered_map<std::uint64_t, where> calls;  // call spans, to draw flows from their tools
  auto tid_of = [](std::uint32_t track) { return track == run_track ? 0u : track + 1; };
  std::string out;  // the span events, each with a leading comma
  std::size_t total = 0;
  for (const auto& hs : hosts) total += hs.spans.size();
  out.reserve(total * 110);
  for (std::size_t h = 0; h < hosts.size(); ++h) {
    const auto& hs = hosts[h];
    int pid = static_cast<int>(h) + 1;
    events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"tid", 0}, {"args", {{"name", hs.host}}}});
    events.push_back({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", pid}, {"tid", 0},
                      {"args", {{"sort_index", pid}}}});
    events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", pid}, {"tid", 0}, {"args", {{"name", "run"}}}});
    for (const auto& [track, name] : hs.tracks)
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", pid}, {"tid", tid_of(track)},
                        {"args", {{"name", name}}}});
    for (const auto& s : hs.spans)
      if (s.kind == span_kind::call)
        calls.emplace(s.id, where{pid, tid_of(s.track), s.start_ns - hs.offset_ns, s.end_ns - hs.offset_ns});
  }
  for (std::size_t h = 0; h < hosts.size(); ++h) {
    const auto& hs = hosts[h];
    int pid = static_cast<int>(h) + 1;
    for (const auto& s : hs.spans) {
      auto tid = tid_of(s.track);
      auto start = us(s.start_ns, hs.offset_ns);
      auto dur = std::max(0.0, static_cast<double>(s.end_ns - s.start_ns) / 1000.0);
      // Most spans are batches: written straight out (a JSON tree per span costs more than the run).
      out.push_back(',');
      if (s.name.empty())
        fmt::format_to(std::back_inserter(out), R"({{"ph":"X","name":"{0}","cat":"{0}","pid":{1},"tid":{2},)",
                       to_string(s.kind), pid, tid);
      else
        fmt::format_to(std::back_inserter(out), R"({{"ph":"X","name":{},"cat":"{}","pid":{},"tid":{},)",
                       json(s.name).dump(), to_string(s.kind), pid, tid);
      fmt::format_to(std::back_inserter(out), R"("ts":{:.3f},"dur":{:.3f},"args":)", start, dur);
      if (s.attrs.empty() && !s.error) {
        if (s.count >= 0)
          fmt::format_to(std::back_inserter(out), R"({{"count":{}}}}})", s.count);
        else
          out += "{}}";
      } else {
        json args = json::object();
        if (s.count >= 0) args["count"] = s.count;
        for (const auto& a : s.attrs) args[a.key] = plain_json(a.value);
        if (s.error) args["error"] = true;
        out += args.dump();
        out += '}';
      }
      if (s.kind != span_kind::tool) continue;
      auto it = calls.find(s.parent);
      if (it == calls.end()) continue;
      const auto& c = it->second;
      // Call -> tool: leaves the call span at its start, arrives in the tool span (bound to its start).
      auto out_id = to_hex(s.id) + "a";
      auto back_id = to_hex(s.id) + "b";
      events.push_back({{"ph", "s"}, {"name", "call"}, {"cat", "flow"}, {"id", out_id}, {"pid", c.pid},
                        {"tid", c.tid}, {"ts", us(c.start, 0)}});
      events.push_back({{"ph", "f"}, {"bp", "e"}, {"name", "call"}, {"cat", "flow"}, {"id", out_id}, {"pid", pid},
                        {"tid", tid}, {"ts", start}});
      // Tool -> reply: leaves the tool span at its end, arrives at the end of the call span.
      auto tool_end = us(s.end_ns, hs.offset_ns);
      auto call_end = std::max(us(c.end, 0), tool_end);
      events.push_back({{"ph", "s"}, {"name", "reply"}, {"cat", "flow"}, {"id", back_id}, {"pid", pid},
                        {"tid", tid}, {"ts", tool_end}});
      events.push_back({{"ph", "f"}, {"bp", "e"}, {"name", "reply"}, {"cat", "flow"}, {"id", back_id},
                        {"pid", c.pid}, {"tid", c.tid}, {"ts", call_end}});
    }
  }
  // Metadata and flows (few) as JSON values, the spans (many) already written into `out`.
  std::string head = R"({"displayTimeUnit":"ms","otherData":{"trace_id":")" + to_hex(t.trace()) + R"("},"traceEvents":[)";
  bool first = true;
  for (const auto& e : events) {
    if (!first) head.push_back(',');
    first = false;
    head += e.dump();
  }
  if (first && !out.empty()) out.erase(0, 1);  // no metadata: drop the spans' leading comma
  head += out;
  head += "]}";
  return head;
}

void write_chrome(tracer& t, const std::string& path) {
  auto text = chrome_json(t);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error(fmt::format("--trace {}: cannot open the file for writing", path));
  f << text;
  f.close();
  if (!f) throw std::runtime_error(fmt::format("--trace {}: write failed", path));
}

// -- OTLP/HTTP JSON ---------------------------------------------------------------------------------------

std::string otlp_json(tracer& t) {
  const auto& hosts = t.hosts();
  auto trace = to_hex(t.trace());
  json resource_spans = json::array();
  for (const auto& hs : hosts) {
    std::unordered_map<std::uint32_t, const std::string*> names;
    for (const auto& [track, name] : hs.tracks) names.emplace(track, &name);
    json spans = json::array();
    for (const auto& s : hs.spans) {
      json attrs = json::array();
      if (s.track != run_track) {
        auto it = names.find(s.track);
        if (it != names.end()) attrs.push_back(attr_json({"loom.node", *it->second}));
        attrs.push_back(attr_json({"loom.instance", static_cast<std::int64_t>(s.track)}));
      }
      if (s.count >= 0) attrs.push_back(attr_json({"loom.count", s.count}));
      for (const auto& a : s.attrs) attrs.push_back(attr_json(a));
      // SpanKind: 1 internal, 2 server, 3 client.
      int kind = s.kind == span_kind::model || s.kind == span_kind::call ? 3
                 : s.kind == span_kind::tool || s.kind == span_kind::request ? 2
                                                                             : 1;
      json j{{"traceId", trace},
             {"spanId", to_hex(s.id)},
             {"name", span_name(s)},
             {"kind", kind},
             {"startTimeUnixNano", std::to_string(s.start_ns - hs.offset_ns)},
             {"endTimeUnixNano", std::to_string(std::max(s.end_ns, s.start_ns) - hs.offset_ns)},
             {"attributes", std::move(attrs)},
             {"status", {{"code", s.error ? 2 : 0}}}};
      if (s.parent != 0) j["parentSpanId"] = to_hex(s.parent);
      spans.push_back(std::move(j));
    }
    json resource{{"attributes", json::array({attr_json({"service.name", std::string("loom")}),
                                              attr_json({"host.name", hs.host})})}};
    resource_spans.push_back({{"resource", std::move(resource)},
                              {"scopeSpans", json::array({{{"scope", {{"name", "loom"}}}, {"spans", std::move(spans)}}})}});
  }
  return json{{"resourceSpans", std::move(resource_spans)}}.dump();
}

namespace {
struct http_url {
  std::string origin, prefix;
};
std::variant<http_url, std::string> split_url(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return fmt::format("`{}`: expected http://host[:port][/path]", url);
  auto scheme = url.substr(0, scheme_end);
  if (scheme != "http") return fmt::format("`{}`: the scheme must be http", url);
  auto host_end = url.find('/', scheme_end + 3);
  http_url u;
  u.origin = url.substr(0, host_end);
  if (u.origin.size() == scheme_end + 3) return fmt::format("`{}`: no host", url);
  u.prefix = host_end == std::string::npos ? "" : url.substr(host_end);
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  return u;
}
}  // namespace

std::optional<std::string> check_otlp_url(const std::string& url) {
  auto u = split_url(url);
  if (auto* e = std::get_if<std::string>(&u)) return *e;
  return std::nullopt;
}

void export_otlp(tracer& t, const std::string& url, std::chrono::milliseconds deadline) {
  auto u = split_url(url);
  if (auto* e = std::get_if<std::string>(&u)) throw std::runtime_error("--otlp " + *e);
  const auto& at = std::get<http_url>(u);
  auto body = otlp_json(t);
  httplib::Client client(at.origin);
  auto s = static_cast<time_t>(deadline.count() / 1000);
  auto usec = static_cast<time_t>(deadline.count() % 1000 * 1000);
  client.set_connection_timeout(s, usec);
  client.set_read_timeout(s, usec);
  client.set_write_timeout(s, usec);
  auto res = client.Post(at.prefix + "/v1/traces", body, "application/json");
  if (!res)
    throw std::runtime_error(
        fmt::format("--otlp: POST {}{}/v1/traces failed: {}", at.origin, at.prefix, httplib::to_string(res.error())));
  if (res->status < 200 || res->status >= 300)
    throw std::runtime_error(fmt::format("--otlp: POST {}{}/v1/traces: HTTP {}: {}", at.origin, at.prefix,
                                         res->status, res->body.substr(0, 200)));
}

struct otlp_exporter::impl {
  std::string url;
  std::size_t capacity;
  std::chrono::milliseconds deadline;
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::shared_ptr<tracer>> queue;
  bool stopping = false;
  bool failing = false;  // the last export failed: the next failure is not logged again
  counter& exported = metrics().get_counter("loom_otlp_exported_total", "Traces exported to the --otlp collector.");
  counter& dropped_full = dropped("queue_full");
  counter& dropped_failed = dropped("export_failed");
  std::thread thread;

  static counter& dropped(const char* reason) {
    return metrics().get_counter("loom_otlp_dropped_total",
                                 "Traces not exported: the queue to the --otlp collector was full, or the export "
                                 "failed or passed its deadline.",
                                 {{"reason", reason}});
  }

  void send(tracer& t) {
    try {
      export_otlp(t, url, deadline);
      exported.add();
      if (std::exchange(failing, false)) spdlog::info("--otlp: exporting to {} again", url);
    } catch (const std::exception& e) {
      dropped_failed.add();
      if (!std::exchange(failing, true))
        spdlog::warn("{} (traces are dropped until the collector answers; loom_otlp_dropped_total counts them)",
                     e.what());
    }
  }

  void loop() {
    std::unique_lock lock{m};
    for (;;) {
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (stopping) return;
      auto t = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      send(*t);
      lock.lock();
    }
  }
};

otlp_exporter::otlp_exporter(std::string url, std::size_t capacity, std::chrono::milliseconds deadline)
    : impl_(std::make_unique<impl>()) {
  impl_->url = std::move(url);
  impl_->capacity = std::max<std::size_t>(1, capacity);
  impl_->deadline = deadline;
  impl_->thread = std::thread([x = impl_.get()] { x->loop(); });
}

otlp_exporter::~otlp_exporter() {
  auto& x = *impl_;
  std::deque<std::shared_ptr<tracer>> left;
  {
    std::lock_guard lock{x.m};
    x.stopping = true;
    left.swap(x.queue);
  }
  x.cv.notify_all();
  x.thread.join();  // at most the deadline of the export under way
  // What still waits goes in one request per trace while one deadline lasts; the rest is dropped.
  auto until = std::chrono::steady_clock::now() + x.deadline;
  for (auto& t : left) {
    if (std::chrono::steady_clock::now() >= until || x.failing) x.dropped_failed.add();
    else x.send(*t);
  }
}

void otlp_exporter::submit(std::shared_ptr<tracer> t) {
  auto& x = *impl_;
  {
    std::lock_guard lock{x.m};
    if (x.queue.size() >= x.capacity) {
      x.dropped_full.add();
      return;
    }
    x.queue.push_back(std::move(t));
  }
  x.cv.notify_one();
}

}  // namespace loom::observe
