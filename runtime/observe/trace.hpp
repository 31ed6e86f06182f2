// runtime/observe/trace.hpp: tracing one run. A `tracer` is made per run (never a global), handed to the
// executor in run_options::trace; null means tracing is off and costs one pointer test per batch.
//
// Recording is cheap when on: every node instance gets its own `span_buffer` (one lock when the actor
// starts, none per span); a span is a plain struct appended to that buffer by the one thread that runs the
// actor. The tracer gathers the buffers at the end of the run (after every actor reported: the coordinator's
// receive of the last report orders it after every append).
//
// A run is one trace: a 128-bit trace id and a root span. Span ids are random 64-bit numbers. The context
// travels as a W3C `traceparent` (00-TRACEID-SPANID-01): to the workers of a cluster run, to model servers
// in every chat-completions request, and from a `loom serve` request's own header.
//
// Writers: the Chrome trace-event format (Perfetto, chrome://tracing) and OTLP/HTTP JSON (OpenTelemetry).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace loom::observe {

struct trace_id {
  std::uint64_t hi = 0, lo = 0;
  bool valid() const { return hi != 0 || lo != 0; }
  bool operator==(const trace_id&) const = default;
};

// Where a span sits: its trace and its own id (the parent of what it starts).
struct span_context {
  trace_id trace;
  std::uint64_t span = 0;
};

std::string to_hex(std::uint64_t v);   // 16 lowercase hex digits
std::string to_hex(const trace_id& t); // 32 lowercase hex digits
// "00-<trace>-<span>-01".
std::string to_traceparent(const span_context& c);
// Parses a W3C traceparent header; nullopt for anything malformed (wrong length, version ff, all-zero ids).
std::optional<span_context> parse_traceparent(std::string_view header);

// Random ids from the system's entropy (one read per call: use rng for many).
trace_id random_trace_id();
std::uint64_t random_span_id();

// A small non-cryptographic generator for span ids on the hot path (seeded from random_span_id()).
class rng {
 public:
  rng();
  std::uint64_t next();  // never 0

 private:
  std::uint64_t s_;
};

using attr_value = std::variant<std::int64_t, double, std::string, bool>;
struct attr {
  std::string key;
  attr_value value;
};

// What a span stands for; the writers name and draw them from it.
enum class span_kind : std::uint8_t {
  run,      // a whole run on one host (the driver's root, a worker's part)
  batch,    // a node handled a slice of queued input (count: values handled)
  pull,     // a source produced values (count: values emitted)
  call,     // a node's call to a tool: from the request to the reply (the client side)
  tool,     // a tool served one call (the server side; its parent is the caller's call span)
  model,    // a chat-completions request to a model server (GenAI attributes)
  request,  // a `loom serve` request
};
const char* to_string(span_kind k);

// One span. Times are unix nanoseconds on the recording host's clock.
struct span {
  std::uint64_t id = 0;
  std::uint64_t parent = 0;  // 0: the host's run span
  span_kind kind = span_kind::batch;
  std::uint32_t track = 0;   // the node instance (its index in the run's plan); the run span: run_track
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::int64_t count = -1;   // batch/pull: values; -1: none
  std::string name;          // empty: to_string(kind)
  std::vector<attr> attrs;   // empty for batches (no allocation)
  bool error = false;
};

constexpr std::uint32_t run_track = 0xffffffffu;

class tracer;

// One node instance's spans. Written by one thread at a time (its actor's), read by the tracer at the end.
class span_buffer {
 public:
  span_buffer(tracer& t, std::uint32_t track);
  tracer& owner() const { return *tracer_; }
  std::uint32_t track() const { return track_; }
  std::uint64_t new_id() { return rng_.next(); }
  // The span the node is inside now (a batch, a served call): a model request or a call started from a
  // handler is its child. 0: the run span.
  std::uint64_t current = 0;
  // Unix nanoseconds now (one clock read).
  std::int64_t now_ns() const;
  // Unix nanoseconds of a steady_clock reading the executor already made.
  std::int64_t unix_ns(std::chrono::steady_clock::time_point t) const;
  void add(span s) { spans_.push_back(std::move(s)); }
  // The trace context for a request made from inside span `parent` (0: current).
  span_context context(std::uint64_t parent = 0) const;

 private:
  friend class tracer;
  tracer* tracer_;
  std::uint32_t track_;
  rng rng_;
  std::vector<span> spans_;
};

// The spans of one host, its tracks named, ready to write. `offset_ns` is subtracted from every time to put
// them on the driver's clock (0 on the driver itself).
struct host_spans {
  std::string host;
  std::vector<std::pair<std::uint32_t, std::string>> tracks;  // track -> name ("node", "node[1]")
  std::vector<span> spans;
  std::int64_t offset_ns = 0;
};

// A host's spans as JSON, to ship them to the driver of a cluster run, and back. from_json throws
// std::invalid_argument naming the field that is missing or of the wrong type.
std::string to_json(const host_spans& h);
host_spans host_spans_from_json(std::string_view text);

class tracer {
 public:
  // A fresh trace (a new trace id and root span) recorded under host name `host`.
  explicit tracer(std::string host = "local");
  // Joins a trace started elsewhere: the spans' root parent is `parent.span` (a worker under the driver's
  // run span, a served request under the client's span).
  tracer(std::string host, span_context parent);

  const trace_id& trace() const { return trace_; }
  // This host's run span: the parent of every span recorded here that has no other.
  std::uint64_t root() const { return root_; }
  span_context root_context() const { return {trace_, root_}; }
  const std::string& host() const { return host_; }

  // Instance `track`'s buffer, named `name` (one lock per call; call once per actor). Stable until the
  // tracer is destroyed.
  span_buffer& buffer(std::uint32_t track, std::string name);

  // Ends the run span (set at construction; call when the run ends), named "run GRAPH" (`kind` request:
  // "request GRAPH", a `loom serve` request), and gathers this host's spans. Call once every writer is
  // done. Further calls return the same spans.
  host_spans finish(std::string_view graph = {}, span_kind kind = span_kind::run);
  // Spans of other hosts (a cluster driver adds its workers'), in the merged output.
  void add_host(host_spans h);
  // Everything: this host first (finished), then the hosts added.
  const std::vector<host_spans>& hosts();

  std::int64_t unix_minus_steady_ns() const { return unix_minus_steady_; }

 private:
  std::string host_;
  trace_id trace_;
  std::uint64_t root_;
  std::uint64_t root_parent_ = 0;
  std::int64_t start_ns_;
  std::int64_t unix_minus_steady_;
  std::mutex m_;
  std::deque<std::unique_ptr<span_buffer>> buffers_;
  std::vector<std::pair<std::uint32_t, std::string>> names_;
  bool finished_ = false;
  std::string run_name_;
  span_kind run_kind_ = span_kind::run;
  std::vector<host_spans> hosts_;
};

// The Chrome trace-event JSON of every host: pid = host (0 first), tid = instance, "X" complete events,
// flow events from a call span to its tool span and back, metadata naming processes and threads.
std::string chrome_json(tracer& t);
// Writes chrome_json to `path`; throws std::runtime_error naming the file when it cannot.
void write_chrome(tracer& t, const std::string& path);

// The OTLP/HTTP JSON body (ExportTraceServiceRequest) of every host: one resourceSpans per host.
std::string otlp_json(tracer& t);
// POSTs otlp_json to `url` + "/v1/traces" within `deadline`; throws std::runtime_error saying what failed
// (a bad URL, no connection, a non-2xx status). `url` is http://host[:port][/prefix].
void export_otlp(tracer& t, const std::string& url, std::chrono::milliseconds deadline = std::chrono::seconds(10));

// Exports finished traces from a thread of its own, off the path of what made them (`loom serve`: each
// request's run, which must not wait for a collector). At most `capacity` traces wait; one more is dropped
// at once. Each export gets `deadline` (to connect, to send, to be answered). Every trace dropped (the queue
// was full, the export failed or timed out) counts in loom_otlp_dropped_total{reason}; each one sent in
// loom_otlp_exported_total. A failure is logged when it starts, not per trace.
class otlp_exporter {
 public:
  explicit otlp_exporter(std::string url, std::size_t capacity = 64,
                         std::chrono::milliseconds deadline = std::chrono::seconds(2));
  // Sends what still waits for at most one more deadline; the rest is dropped (and counted).
  ~otlp_exporter();
  otlp_exporter(const otlp_exporter&) = delete;
  otlp_exporter& operator=(const otlp_exporter&) = delete;

  // Queues a finished trace; never blocks.
  void submit(std::shared_ptr<tracer> t);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Checks an --otlp URL before a run starts; returns the reason it is unusable, or nullopt.
std::optional<std::string> check_otlp_url(const std::string& url);

}  // namespace loom::observe
