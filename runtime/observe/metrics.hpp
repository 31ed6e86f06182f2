// runtime/observe/metrics.hpp: the process-wide metrics registry and the Prometheus text exposition format
// (0.0.4). There is no Prometheus client library in Debian 12; this is the small part of one loom needs.
//
// Two ways in:
// - Owned metrics (counter, gauge, histogram): the thing counted asks the registry once, when it is made,
//   for the child with its labels and keeps the reference; the hot path is then one relaxed atomic add
//   (no lock, no lookup). Children live as long as the registry (the process).
// - Collectors: a function called at scrape time that reads a snapshot it already has (a run's progress
//   report, a server's in-flight count) and appends samples. Removing one waits for a scrape in progress.
// Families of the same name from several sources (owned children, collectors, a worker's pushed samples)
// are merged into one family on output.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace loom::observe {

using label_set = std::vector<std::pair<std::string, std::string>>;

enum class metric_type { counter, gauge, histogram, untyped };

// One line of the exposition: NAME{LABELS} VALUE, where NAME is the family's name plus a suffix for
// histograms (_bucket, _sum, _count).
struct sample {
  std::string name;
  label_set labels;
  double value = 0;
};

struct family {
  std::string name;
  std::string help;
  metric_type type = metric_type::untyped;
  std::vector<sample> samples;
};

// A counter: only goes up. `scale` multiplies the stored integer on output (1e-9: nanoseconds stored,
// seconds exposed).
class counter {
 public:
  void add(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class gauge {
 public:
  void add(std::int64_t n) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  void set(std::int64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

// A histogram of seconds with fixed upper bounds (le); +Inf is implied.
class histogram {
 public:
  explicit histogram(std::vector<double> bounds);
  void observe(double seconds) noexcept;
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  // Cumulative counts per bound, then the +Inf count; and the sum.
  std::vector<std::uint64_t> cumulative() const;
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bound, then +Inf (not cumulative)
  std::atomic<double> sum_{0};
};

// Latency buckets for requests that take milliseconds to minutes (LLM calls, tool calls, HTTP requests).
std::vector<double> default_seconds_buckets();

class registry {
 public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Get-or-create a child. Throws std::invalid_argument for a bad metric or label name, or when the name
  // was registered with another type or other label names. `scale`: see counter.
  counter& get_counter(const std::string& name, const std::string& help, const label_set& labels = {},
                       double scale = 1);
  gauge& get_gauge(const std::string& name, const std::string& help, const label_set& labels = {});
  histogram& get_histogram(const std::string& name, const std::string& help, const label_set& labels = {},
                           const std::vector<double>& bounds = default_seconds_buckets());

  using collector = std::function<void(std::vector<family>&)>;
  std::uint64_t add_collector(collector c);
  // After it returns, the collector is not running and will not run again.
  void remove_collector(std::uint64_t id);

  // Every family, merged by name, in name order.
  std::vector<family> collect() const;
  // collect() written in the text format.
  std::string text() const;

 private:
  struct owned;
  mutable std::mutex mutex_;  // owned_ (creation; scrape reads the map, the values are atomics)
  std::map<std::string, std::unique_ptr<owned>> owned_;
  mutable std::mutex collectors_mutex_;
  std::map<std::uint64_t, collector> collectors_;
  std::uint64_t next_collector_ = 1;
};

// The process-wide registry.
registry& metrics();

// A tool's calls as the tool serves them: loom_tool_calls_total{tool,status="ok"|"error"} and
// loom_tool_call_seconds{tool}. Made once per tool instance; record() is atomics only.
struct tool_meter {
  explicit tool_meter(const std::string& tool, registry& r = metrics());
  void record(bool ok, double seconds) noexcept {
    (ok ? ok_ : error_).add();
    seconds_.observe(seconds);
  }
  counter& ok_;
  counter& error_;
  histogram& seconds_;
};
// A call that never reached the tool's code: status "timeout" (the caller gave up) or "rejected" (busy).
void count_tool_call(const std::string& tool, const char* status, registry& r = metrics());

// loom_link_bytes_total / loom_link_messages_total{peer,direction="in"|"out"} for one endpoint's I/O thread
// (not thread-safe). The last peer's counters are kept per direction, so a run of messages with one peer
// costs a string compare; a change of peer finds its counters in a local hash map (no lock), and only a
// peer never seen before goes to the registry.
class link_meters {
 public:
  explicit link_meters(registry& r = metrics()) : registry_(r) {}
  void count(const std::string& peer, bool out, std::size_t bytes);

 private:
  struct meter {
    counter* bytes = nullptr;
    counter* messages = nullptr;
  };
  registry& registry_;
  std::string last_peer_[2];
  meter last_[2];
  std::unordered_map<std::string, meter> known_[2];
};

// The text format, version 0.0.4 (Content-Type: text/plain; version=0.0.4).
inline constexpr const char* text_content_type = "text/plain; version=0.0.4; charset=utf-8";
std::string write_text(const std::vector<family>& families);
// Label values: backslash, double quote and line feed escaped. HELP text: backslash and line feed.
std::string escape_label_value(std::string_view s);
std::string escape_help(std::string_view s);
// A sample value: integers without a fraction, +Inf/-Inf/NaN as the format spells them.
std::string format_value(double v);
// Whether `s` is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name ([a-zA-Z_][a-zA-Z0-9_]*).
bool valid_metric_name(std::string_view s);
bool valid_label_name(std::string_view s);

// Reads text written by write_text (a worker's pushed samples) back into families; every sample gets
// `extra` labels added first (the driver adds host="..."). Throws std::runtime_error naming the line for
// text it cannot read.
std::vector<family> parse_text(std::string_view text, const label_set& extra = {});

// Merges `more` into `into` (same name: samples appended), keeping name order.
void merge(std::vector<family>& into, std::vector<family> more);

}  // namespace loom::observe
