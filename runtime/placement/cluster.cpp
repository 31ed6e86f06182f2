// runtime/placement/cluster.cpp: reading a cluster file with the graph loader's YAML machinery, so its
// errors read like a graph file's: FILE:LINE:COL, what was expected, a "did you mean" hint.
#include "loom/runtime/placement/cluster.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>

#include "loom/graph/detail/edge_syntax.hpp"
#include "loom/graph/detail/yaml_document.hpp"
#include "loom/graph/detail/yaml_reader.hpp"

namespace loom::placement {

using graph::diagnostics;
using graph::location;
using graph::yaml_entry;
using graph::yaml_reader;

namespace {

const std::vector<std::string> top_level_keys{"name", "hosts", "security", "max_message_size"};
const std::vector<std::string> host_fields{"name", "address", "cpus", "memory", "gpus", "labels", "public_key"};

// Why `address` is not tcp://HOST:PORT, or empty when it is.
std::string address_problem(std::string_view address) {
  constexpr std::string_view scheme = "tcp://";
  if (address.substr(0, scheme.size()) != scheme) return "must start with `tcp://`";
  std::string_view rest = address.substr(scheme.size());
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return "has no `:PORT`";
  std::string_view name = rest.substr(0, colon), port = rest.substr(colon + 1);
  bool bracketed = name.size() > 2 && name.front() == '[' && name.back() == ']';
  bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == '*';
  });
  if (!bracketed && !plain) return name.empty() ? "has no host before `:PORT`" : fmt::format("has a bad host `{}`", name);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535)
    return fmt::format("has a bad port `{}` (expected 1 to 65535)", port);
  return {};
}

class cluster_reader {
 public:
  cluster_reader(yaml_reader& r, cluster& c) : r_(r), c_(c) {}

  void top_level(const YAML::Node& root) {
    bool has_hosts = false;
    for (const auto& e : r_.entries(root, top_level_keys, "top-level key", " in a cluster file")) {
      if (e.key == "name") {
        if (auto v = r_.string_of(e, "`name` (the cluster's name)")) c_.name = *v;
      } else if (e.key == "hosts") {
        has_hosts = true;
        hosts(e);
      } else if (e.key == "security") {
        security(e);
      } else if (e.key == "max_message_size") {
        if (auto v = r_.size_of(e, "`max_message_size`")) {
          if (*v < 4096)
            r_.diags().error(e.value_at, fmt::format("`max_message_size` of {} is too small", size_text(*v)),
                             "give at least 4 KiB (the default is 64 MiB)");
          else
            c_.max_message_bytes = *v;
        }
      }
    }
    if (!has_hosts)
      r_.diags().error(location{r_.file(), 1, 1}, "the cluster file has no `hosts`",
                       "add a `hosts:` list of {name: NAME, address: tcp://HOST:PORT, cpus: N, ...}");
  }

 private:
  void hosts(const yaml_entry& e) {
    if (!e.value.IsSequence() || e.value.size() == 0) {
      r_.diags().error(e.value_at, "`hosts` must be a list with at least one host",
                       "each item: {name: NAME, address: tcp://HOST:PORT, cpus: N, memory: SIZE, gpus: [...]}");
      return;
    }
    std::map<std::string, int> first_line;
    for (const auto& item : e.value) {
      host h;
      h.where = r_.at(item);
      if (!item.IsMap()) {
        r_.diags().error(h.where, "a host must be a map: {name: NAME, address: tcp://HOST:PORT, ...}");
        continue;
      }
      if (!host_entry(item, h)) continue;
      if (auto [first, inserted] = first_line.emplace(h.name, h.where.line); !inserted) {
        r_.diags().error(name_at_, fmt::format("duplicate host name `{}`", h.name),
                         fmt::format("`{}` is first defined at line {}", h.name, first->second));
        continue;
      }
      c_.hosts.push_back(std::move(h));
    }
  }

  // Reads one host's fields; false when it has no usable name.
  bool host_entry(const YAML::Node& item, host& h) {
    bool has_address = false;
    std::optional<std::string> name;
    name_at_ = h.where;
    auto fields = r_.entries(item, host_fields, "host field", "");
    for (const auto& f : fields) {
      if (f.key != "name") continue;
      name_at_ = f.value_at;
      name = r_.string_of(f, "a host's `name`");
      if (name && !graph::is_node_name(*name)) {
        r_.diags().error(f.value_at, fmt::format("`{}` is not a valid host name", *name),
                         "a host name is a letter or `_`, then letters, digits, `_` or `-`");
        name.reset();
      }
    }
    std::string context = name ? fmt::format(" of host `{}`", *name) : std::string(" of a host");
    for (const auto& f : fields) {
      std::string what = fmt::format("`{}`{}", f.key, context);
      if (f.key == "address") {
        has_address = true;
        address(f, what, h);
      } else if (f.key == "cpus") {
        auto v = r_.number_of(f, what);
        if (v && !(*v > 0)) r_.diags().error(f.value_at, fmt::format("{} must be more than 0, found {:g}", what, *v));
        else if (v) h.cpus = *v;
      } else if (f.key == "memory") {
        if (auto v = r_.size_of(f, what)) h.memory = *v;
      } else if (f.key == "gpus") {
        gpus(f, what, h);
      } else if (f.key == "labels") {
        labels(f, what, h);
      } else if (f.key == "public_key") {
        auto v = r_.string_of(f, what);
        if (v && v->empty())
          r_.diags().error(f.value_at, fmt::format("{} is empty", what), "give the path of the host's PREFIX.pub");
        else if (v)
          h.public_key = key_file{*v, resolve(*v), f.value_at};
      }
    }
    if (!name) {
      if (std::none_of(fields.begin(), fields.end(), [](const yaml_entry& f) { return f.key == "name"; }))
        r_.diags().error(h.where, "a host has no `name`", "add `name: NAME`; `placement.host` refers to it");
      return false;
    }
    h.name = *name;
    if (!has_address)
      r_.diags().error(h.where, fmt::format("host `{}` has no `address`", h.name),
                       "add `address: tcp://HOST:PORT`, where its `loom worker` listens");
    return true;
  }

  void address(const yaml_entry& f, const std::string& what, host& h) {
    auto v = r_.string_of(f, what);
    if (!v) return;
    if (auto problem = address_problem(*v); !problem.empty()) {
      r_.diags().error(f.value_at, fmt::format("{} `{}` {}", what, *v, problem), "write it as tcp://HOST:PORT, e.g. tcp://10.0.0.5:7101");
      return;
    }
    h.address = *v;
  }

  void gpus(const yaml_entry& f, const std::string& what, host& h) {
    if (f.value.IsScalar()) {
      auto count = r_.int_of(f, what + " (a count, or a list of {memory: SIZE})");
      if (count && (*count < 0 || *count > 4096)) r_.diags().error(f.value_at, fmt::format("{} must be 0 to 4096, found {}", what, *count));
      else if (count) h.gpus.assign(static_cast<std::size_t>(*count), gpu{0, {}, f.value_at});
      return;
    }
    if (!f.value.IsSequence()) {
      r_.diags().error(f.value_at, fmt::format("{} must be a count or a list of {{memory: SIZE, name: NAME}}", what));
      return;
    }
    for (const auto& item : f.value) {
      gpu g;
      g.where = r_.at(item);
      std::string gpu_what = fmt::format("GPU {}{}", h.gpus.size(), what.substr(what.find(" of ")));
      if (!item.IsMap()) {
        r_.diags().error(g.where, fmt::format("{} must be a map: {{memory: SIZE, name: NAME}}", gpu_what));
        continue;
      }
      bool has_memory = false;
      for (const auto& e : r_.entries(item, {"memory", "name"}, "GPU field", what.substr(what.find(" of ")))) {
        if (e.key == "memory") {
          has_memory = true;
          if (auto v = r_.size_of(e, fmt::format("`memory` of {}", gpu_what))) g.memory = *v;
        } else if (auto v = r_.string_of(e, fmt::format("`name` of {}", gpu_what))) {
          g.name = *v;
        }
      }
      if (!has_memory) r_.diags().error(g.where, fmt::format("{} has no `memory`", gpu_what), "add `memory: SIZE`, e.g. 80GiB");
      h.gpus.push_back(std::move(g));
    }
  }

  void labels(const yaml_entry& f, const std::string& what, host& h) {
    if (!f.value.IsMap()) {
      r_.diags().error(f.value_at, fmt::format("{} must be a map of label: value", what));
      return;
    }
    for (const auto& l : r_.entries(f.value, {}, "label", what.substr(what.find(" of "))))
      if (auto v = r_.string_of(l, fmt::format("label `{}`{}", l.key, what.substr(what.find(" of ")))))
        h.labels.emplace_back(l.key, *v);
  }

  void security(const yaml_entry& e) {
    if (!e.value.IsMap()) {
      r_.diags().error(e.value_at, "`security` must be a map: {curve: {server_key_file: PATH, client_key_file: PATH}}");
      return;
    }
    for (const auto& s : r_.entries(e.value, {"curve"}, "key", " in `security`")) {
      if (!s.value.IsMap()) {
        r_.diags().error(s.value_at, "`security.curve` must be a map: {server_key_file: PATH, client_key_file: PATH}");
        continue;
      }
      curve_keys keys;
      keys.where = s.value_at;
      for (const auto& k : r_.entries(s.value, {"server_key_file", "client_key_file"}, "key", " in `security.curve`")) {
        auto v = r_.string_of(k, fmt::format("`security.curve.{}`", k.key));
        if (!v) continue;
        if (v->empty()) {
          r_.diags().error(k.value_at, fmt::format("`security.curve.{}` is empty", k.key), "give the path of a key file");
          continue;
        }
        (k.key == "server_key_file" ? keys.server_key_file : keys.client_key_file) = key_file{*v, resolve(*v), k.value_at};
      }
      c_.curve = std::move(keys);
    }
  }

  std::string resolve(const std::string& path) const {
    std::filesystem::path p(path);
    if (p.is_absolute()) return path;
    return (std::filesystem::path(*r_.file()).parent_path() / p).lexically_normal().string();
  }

  yaml_reader& r_;
  cluster& c_;
  location name_at_;
};

}  // namespace

const std::string* host::label(std::string_view key) const {
  for (const auto& [k, v] : labels)
    if (k == key) return &v;
  return nullptr;
}

int cluster::find(std::string_view name) const {
  for (std::size_t i = 0; i < hosts.size(); ++i)
    if (hosts[i].name == name) return static_cast<int>(i);
  return -1;
}

std::vector<std::string> cluster::host_names() const {
  std::vector<std::string> names;
  for (const auto& h : hosts) names.push_back(h.name);
  return names;
}

std::optional<cluster> load_cluster_text(std::string_view text, const std::string& file, diagnostics& diags) {
  std::size_t errors_before = diags.error_count();
  try {
    graph::yaml_document_options options;
    options.what = "cluster";
    options.empty_hint = "a cluster file needs at least a `hosts:` list";
    options.map_hint = "with `hosts:` (and `name:`, `security:`, `max_message_size:`)";
    auto doc = graph::parse_yaml_document(text, file, diags, options);
    if (!doc) return std::nullopt;
    yaml_reader r(doc->file, diags);
    cluster c;
    c.where = location{doc->file, 0, 0};
    c.name = std::filesystem::path(file).stem().string();
    cluster_reader(r, c).top_level(doc->root);
    if (diags.error_count() > errors_before) return std::nullopt;
    return c;
  } catch (const std::exception& e) {  // yaml-cpp may throw from node access; never let it escape
    diags.error(location{std::make_shared<const std::string>(file), 0, 0},
                fmt::format("cannot read the cluster: {}", e.what()));
    return std::nullopt;
  }
}

std::optional<cluster> load_cluster_file(const std::string& path, diagnostics& diags) {
  auto text = graph::read_text_file(path, diags);
  if (!text) return std::nullopt;
  return load_cluster_text(*text, path, diags);
}

std::string size_text(std::uint64_t bytes) {
  constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:g} {}", std::round(v * 10) / 10, units[u]);
}

}  // namespace loom::placement
