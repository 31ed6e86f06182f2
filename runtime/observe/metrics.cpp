// runtime/observe/metrics.cpp: the registry and the 0.0.4 text format (see metrics.hpp).
#include "loom/runtime/observe/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace loom::observe {

namespace {

const char* type_name(metric_type t) {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
    case metric_type::untyped: return "untyped";
  }
  return "untyped";
}

void check_names(const std::string& name, const label_set& labels) {
  if (!valid_metric_name(name)) throw std::invalid_argument(fmt::format("invalid metric name `{}`", name));
  for (const auto& [k, v] : labels)
    if (!valid_label_name(k) || k.rfind("__", 0) == 0 || k == "le")
      throw std::invalid_argument(fmt::format("metric `{}`: invalid label name `{}`", name, k));
}

void write_labels(std::string& out, const label_set& labels) {
  if (labels.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    out += escape_label_value(v);
    out += '"';
  }
  out += '}';
}

}  // namespace

// --- histogram ---

histogram::histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  if (!bounds_.empty() && std::isinf(bounds_.back())) bounds_.pop_back();
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double seconds) noexcept {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);  // first bound >= value: le is inclusive
  counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(seconds, std::memory_order_relaxed);
}

std::vector<std::uint64_t> histogram::cumulative() const {
  std::vector<std::uint64_t> c(bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) c[i] = total += counts_[i].load(std::memory_order_relaxed);
  return c;
}

std::vector<double> default_seconds_buckets() {
  return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

// --- registry ---

struct registry::owned {
  std::string help;
  metric_type type;
  std::vector<std::string> label_names;
  double scale = 1;
  std::vector<double> bounds;
  // label values -> child; std::map keeps output order stable and children at fixed addresses (unique_ptr).
  std::map<std::vector<std::string>, std::unique_ptr<counter>> counters;
  std::map<std::vector<std::string>, std::unique_ptr<gauge>> gauges;
  std::map<std::vector<std::string>, std::unique_ptr<histogram>> histograms;
};

namespace {

template <class Owned>
Owned& family_for(std::map<std::string, std::unique_ptr<Owned>>& owned, const std::string& name,
                  const std::string& help, metric_type type, const label_set& labels) {
  check_names(name, labels);
  std::vector<std::string> names;
  for (const auto& l : labels) names.push_back(l.first);
  auto& f = owned[name];
  if (!f) {
    f = std::make_unique<Owned>();
    f->help = help;
    f->type = type;
    f->label_names = names;
  } else if (f->type != type || f->label_names != names) {
    throw std::invalid_argument(
        fmt::format("metric `{}` is already registered as a {} with other labels or type", name, type_name(f->type)));
  }
  return *f;
}

std::vector<std::string> values_of(const label_set& labels) {
  std::vector<std::string> v;
  for (const auto& l : labels) v.push_back(l.second);
  return v;
}

}  // namespace

registry::registry() = default;
registry::~registry() = default;

counter& registry::get_counter(const std::string& name, const std::string& help, const label_set& labels,
                               double scale) {
  std::lock_guard lock{mutex_};
  auto& f = family_for(owned_, name, help, metric_type::counter, labels);
  f.scale = scale;
  auto& c = f.counters[values_of(labels)];
  if (!c) c = std::make_unique<counter>();
  return *c;
}

gauge& registry::get_gauge(const std::string& name, const std::string& help, const label_set& labels) {
  std::lock_guard lock{mutex_};
  auto& f = family_for(owned_, name, help, metric_type::gauge, labels);
  auto& g = f.gauges[values_of(labels)];
  if (!g) g = std::make_unique<gauge>();
  return *g;
}

histogram& registry::get_histogram(const std::string& name, const std::string& help, const label_set& labels,
                                   const std::vector<double>& bounds) {
  std::lock_guard lock{mutex_};
  auto& f = family_for(owned_, name, help, metric_type::histogram, labels);
  auto& h = f.histograms[values_of(labels)];
  if (!h) h = std::make_unique<histogram>(bounds);
  return *h;
}

std::uint64_t registry::add_collector(collector c) {
  std::lock_guard lock{collectors_mutex_};
  auto id = next_collector_++;
  collectors_.emplace(id, std::move(c));
  return id;
}

void registry::remove_collector(std::uint64_t id) {
  std::lock_guard lock{collectors_mutex_};
  collectors_.erase(id);
}

std::vector<family> registry::collect() const {
  std::vector<family> out;
  {
    std::lock_guard lock{mutex_};
    for (const auto& entry : owned_) {  // not a structured binding: the lambda below captures it (clang 14)
      const auto& name = entry.first;
      const auto& f = entry.second;
      family fam{name, f->help, f->type, {}};
      auto labels_of = [&](const std::vector<std::string>& values) {
        label_set l;
        for (std::size_t i = 0; i < values.size(); ++i) l.emplace_back(f->label_names[i], values[i]);
        return l;
      };
      for (const auto& [values, c] : f->counters)
        fam.samples.push_back({name, labels_of(values), static_cast<double>(c->value()) * f->scale});
      for (const auto& [values, g] : f->gauges)
        fam.samples.push_back({name, labels_of(values), static_cast<double>(g->value())});
      for (const auto& [values, h] : f->histograms) {
        auto counts = h->cumulative();
        auto l = labels_of(values);
        for (std::size_t i = 0; i < counts.size(); ++i) {
          auto bl = l;
          bl.emplace_back("le", i < h->bounds().size() ? format_value(h->bounds()[i]) : "+Inf");
          fam.samples.push_back({name + "_bucket", std::move(bl), static_cast<double>(counts[i])});
        }
        fam.samples.push_back({name + "_sum", l, h->sum()});
        fam.samples.push_back({name + "_count", l, static_cast<double>(counts.back())});
      }
      out.push_back(std::move(fam));
    }
  }
  std::vector<family> more;
  {
    std::lock_guard lock{collectors_mutex_};
    for (const auto& [id, c] : collectors_) c(more);
  }
  merge(out, std::move(more));
  return out;
}

std::string registry::text() const { return write_text(collect()); }

registry& metrics() {
  static registry r;  // never destroyed before the threads that count: function-local static, process lifetime
  return r;
}

tool_meter::tool_meter(const std::string& tool, registry& r)
    : ok_(r.get_counter("loom_tool_calls_total", "Tool calls, by outcome: ok, error, timeout, rejected.",
                        {{"tool", tool}, {"status", "ok"}})),
      error_(r.get_counter("loom_tool_calls_total", "", {{"tool", tool}, {"status", "error"}})),
      seconds_(r.get_histogram("loom_tool_call_seconds", "Time a tool took to serve one call.", {{"tool", tool}})) {}

void count_tool_call(const std::string& tool, const char* status, registry& r) {
  r.get_counter("loom_tool_calls_total", "", {{"tool", tool}, {"status", status}}).add();
}

void link_meters::count(const std::string& peer, bool out, std::size_t bytes) {
  int d = out ? 1 : 0;
  if (!last_[d].bytes || last_peer_[d] != peer) {
    auto& m = known_[d][peer];
    if (!m.bytes) {
      const char* dir = out ? "out" : "in";
      m.bytes = &registry_.get_counter("loom_link_bytes_total", "Bytes sent to or received from a peer host.",
                                       {{"peer", peer}, {"direction", dir}});
      m.messages = &registry_.get_counter("loom_link_messages_total",
                                          "Wire messages sent to or received from a peer host.",
                                          {{"peer", peer}, {"direction", dir}});
    }
    last_peer_[d] = peer;
    last_[d] = m;
  }
  last_[d].bytes->add(bytes);
  last_[d].messages->add();
}

void merge(std::vector<family>& into, std::vector<family> more) {
  for (auto& f : more) {
    auto it = std::find_if(into.begin(), into.end(), [&](const family& x) { return x.name == f.name; });
    if (it == into.end()) {
      into.push_back(std::move(f));
    } else {
      if (it->help.empty()) it->help = f.help;
      if (it->type == metric_type::untyped) it->type = f.type;
      for (auto& s : f.samples) it->samples.push_back(std::move(s));
    }
  }
  std::stable_sort(into.begin(), into.end(), [](const family& a, const family& b) { return a.name < b.name; });
}

// --- the text format ---

std::string escape_label_value(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<std::int64_t>(v));
  return fmt::format("{}", v);  // shortest form that reads back to the same double
}

bool valid_metric_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string write_text(const std::vector<family>& families) {
  std::string out;
  for (const auto& f : families) {
    if (f.samples.empty()) continue;
    out += "# HELP " + f.name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + f.name + " " + type_name(f.type) + "\n";
    for (const auto& s : f.samples) {
      out += s.name;
      write_labels(out, s.labels);
      out += ' ';
      out += format_value(s.value);
      out += '\n';
    }
  }
  return out;
}

namespace {

[[noreturn]] void bad_line(std::size_t line, const std::string& why) {
  throw std::runtime_error(fmt::format("metrics text, line {}: {}", line, why));
}

std::string unescape(std::string_view s, bool quotes) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      if (n == 'n') {
        out += '\n';
      } else if (n == '\\' || (n == '"' && quotes)) {
        out += n;
      } else {
        out += '\\';
        out += n;
      }
    } else {
      out += s[i];
    }
  }
  return out;
}

double parse_value(std::string_view s, std::size_t line) {
  if (s == "+Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  if (s == "NaN") return std::nan("");
  std::string copy(s);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size()) bad_line(line, fmt::format("value `{}` is not a number", copy));
  return v;
}

metric_type parse_type(std::string_view s, std::size_t line) {
  if (s == "counter") return metric_type::counter;
  if (s == "gauge") return metric_type::gauge;
  if (s == "histogram") return metric_type::histogram;
  if (s == "untyped") return metric_type::untyped;
  bad_line(line, fmt::format("unknown type `{}`", s));
}

}  // namespace

std::vector<family> parse_text(std::string_view text, const label_set& extra) {
  std::vector<family> out;
  std::size_t line_no = 0;
  std::string pending_help;
  std::string pending_help_name;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      pending_help_name = std::string(rest.substr(0, sp));
      pending_help = sp == std::string_view::npos ? "" : unescape(rest.substr(sp + 1), false);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      if (sp == std::string_view::npos) bad_line(line_no, "TYPE without a type");
      family f;
      f.name = std::string(rest.substr(0, sp));
      if (!valid_metric_name(f.name)) bad_line(line_no, fmt::format("invalid metric name `{}`", f.name));
      f.type = parse_type(rest.substr(sp + 1), line_no);
      if (pending_help_name == f.name) f.help = pending_help;
      out.push_back(std::move(f));
      continue;
    }
    if (line[0] == '#') continue;
    sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = std::string(line.substr(0, i));
    if (!valid_metric_name(s.name)) bad_line(line_no, fmt::format("invalid metric name `{}`", s.name));
    s.labels = extra;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        auto eq = line.find('=', i);
        if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"')
          bad_line(line_no, "a label without `=\"`");
        std::string name(line.substr(i, eq - i));
        if (!valid_label_name(name)) bad_line(line_no, fmt::format("invalid label name `{}`", name));
        std::size_t j = eq + 2;
        while (j < line.size() && line[j] != '"') j += line[j] == '\\' ? 2 : 1;
        if (j >= line.size()) bad_line(line_no, "an unterminated label value");
        s.labels.emplace_back(std::move(name), unescape(line.substr(eq + 2, j - eq - 2), true));
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) bad_line(line_no, "labels without `}`");
      ++i;
    }
    while (i < line.size() && line[i] == ' ') ++i;
    auto value = line.substr(i);
    auto sp = value.find(' ');  // an optional timestamp follows
    s.value = parse_value(value.substr(0, sp), line_no);
    if (out.empty() || s.name.rfind(out.back().name, 0) != 0) {
      family f;
      f.name = s.name;
      out.push_back(std::move(f));
    }
    out.back().samples.push_back(std::move(s));
  }
  return out;
}

}  // namespace loom::observe
