// runtime/cluster/fingerprint.cpp: canonical descriptions of a kind registry and of an expanded graph.
#include "loom/runtime/cluster/fingerprint.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <vector>

#include "loom/runtime/local/node_actor.hpp"

namespace loom::cluster {
namespace {

std::string ports(const std::vector<graph::port_spec>& ps) {
  std::string out;
  for (const auto& p : ps) {
    if (!out.empty()) out += ',';
    out += p.name;
  }
  return fmt::format("[{}]", out);
}

std::string params(const std::vector<graph::param_spec>& ps) {
  std::string out;
  for (const auto& p : ps) {
    if (!out.empty()) out += ',';
    out += fmt::format("{}:{}", p.name, graph::param_type_name(p.type));
    if (p.required) out += '!';
    if (p.default_value) out += fmt::format("={}", p.default_value->str());
    if (p.min) out += fmt::format(">={}", *p.min);
    if (p.max) out += fmt::format("<={}", *p.max);
    for (const auto& c : p.choices) out += fmt::format("|{}", c);
  }
  return fmt::format("[{}]", out);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

std::string describe_kinds(const registry& kinds, const local::deployment& d) {
  std::set<std::string> used;
  for (const auto& inst : d.instances) used.insert(inst.kind);
  std::string out;
  for (const auto& name : used) {
    const auto* k = kinds.find_kind(name);
    if (!k) continue;
    out += fmt::format("kind {} in={} out={} params={}{}{} resources={}/{}/{}{}\n", k->name, ports(k->inputs),
                       ports(k->outputs), params(k->params),
                       k->call ? fmt::format(" call={}", params(k->call->arguments)) : std::string(),
                       k->blocking ? " blocking" : "", k->resources.cpus, k->resources.memory, k->resources.gpus,
                       k->origin.empty() ? std::string() : " from " + k->origin);
  }
  return out;
}

std::optional<std::string> lacking_kinds(const std::string& driver_kinds, const graph::graph& g,
                                         const registry& kinds) {
  std::set<std::string> told;
  std::string out;
  for (const auto& n : g.nodes) {
    if (kinds.find_kind(n.kind) != nullptr || !told.insert(n.kind).second) continue;
    std::string origin;
    std::istringstream lines(driver_kinds);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("kind " + n.kind + " ", 0) != 0) continue;
      if (auto at = line.rfind(" from "); at != std::string::npos) origin = line.substr(at + 6);
      break;
    }
    if (!out.empty()) out += "; ";
    out += fmt::format("this worker lacks kind `{}` (node `{}`)", n.kind, n.name);
    static constexpr std::string_view python = "python module ";
    if (origin.rfind(python, 0) == 0)
      out += fmt::format(", which the driver has from {}: start the worker with it (python3 -m loom.worker "
                         "--import {})", origin, origin.substr(python.size()));
    else if (!origin.empty())
      out += fmt::format(", which the driver has from {}", origin);
    else
      out += ", a kind of the driver's program or plugin: load the same plugin here (--plugin)";
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::string describe_deployment(const local::deployment& d) {
  std::string out;
  for (std::uint32_t i = 0; i < d.instances.size(); ++i) {
    const auto& c = d.instances[i];
    std::string in, outs, tools;
    for (const auto& l : c.in_links)
      in += fmt::format("{}{}<-{}.{} cap {}", in.empty() ? "" : ",", l.port, l.producer, l.remote, l.capacity);
    for (const auto& port : c.out_ports) {
      outs += "[";
      for (const auto& e : port) {
        outs += "[";
        for (const auto& l : e.links) outs += fmt::format("{}.{} cap {};", l.consumer, l.remote, l.capacity);
        outs += "]";
      }
      outs += "]";
    }
    for (const auto& t : c.tools) {
      tools += fmt::format("{}{}->", tools.empty() ? "" : ",", t.name);
      for (auto k : t.instances) tools += fmt::format("{};", k);
    }
    out += fmt::format("instance {} {} {} of {} in=[{}] out=[{}] tools=[{}]{}\n", i, local::instance_name(d, i),
                       c.kind, c.init.replicas, in, outs, tools, c.is_tool ? " tool" : "");
  }
  return out;
}

transport::run_rules make_rules(const local::deployment& d) {
  transport::run_rules r;
  using transport::run_rules;
  for (std::uint32_t c = 0; c < d.instances.size(); ++c) {
    const auto& inst = d.instances[c];
    for (std::uint32_t k = 0; k < inst.in_links.size(); ++k) {
      const auto& l = inst.in_links[k];
      r.streams[run_rules::key(l.producer, c)].in_links[k] = l.capacity;          // batches and eos into c
      r.streams[run_rules::key(c, l.producer)].out_links[l.remote] = l.capacity;  // credits back
    }
    for (const auto& t : inst.tools)
      for (auto tool : t.instances) {
        r.streams[run_rules::key(c, tool)].calls = true;
        r.streams[run_rules::key(tool, c)].replies = true;
      }
  }
  return r;
}

std::string fingerprint(const std::string& description) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  std::size_t lines = 0;
  for (unsigned char ch : description) {
    h = (h ^ ch) * 0x100000001b3ull;
    lines += ch == '\n';
  }
  return fmt::format("{} lines {:016x}", lines, h);
}

std::optional<std::string> first_difference(const std::string& driver, const std::string& worker,
                                            const std::string& what) {
  if (driver == worker) return std::nullopt;
  auto a = lines_of(driver), b = lines_of(worker);
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size() && i < b.size() && a[i] == b[i]) continue;
    if (i >= a.size()) return fmt::format("{} differ: this worker has `{}`, the driver has nothing there", what, b[i]);
    if (i >= b.size()) return fmt::format("{} differ: the driver has `{}`, this worker has nothing there", what, a[i]);
    return fmt::format("{} differ: the driver has `{}`, this worker has `{}`", what, a[i], b[i]);
  }
  return fmt::format("{} differ", what);
}

std::size_t widen_remote_links(local::deployment& d, const std::vector<std::uint32_t>& instance_host,
                               std::uint32_t window, std::int64_t bytes) {
  std::size_t n = 0;
  if (window == 0) return 0;
  auto host = [&](std::uint32_t i) { return i < instance_host.size() ? instance_host[i] : 0u; };
  auto w = static_cast<std::int64_t>(window);
  for (std::uint32_t p = 0; p < d.instances.size(); ++p)
    for (auto& port : d.instances[p].out_ports)
      for (auto& edge : port)
        for (auto& l : edge.links) {
          if (edge.sized || host(p) == host(l.consumer)) continue;
          auto& in = d.instances[l.consumer].in_links[l.remote];
          l.bytes = in.bytes = bytes;  // every unsized link across hosts: a bound on its bytes too
          if (l.capacity >= w) continue;
          l.capacity = in.capacity = w;
          ++n;
        }
  return n;
}

std::string links_between(const local::deployment& d, const std::vector<std::uint32_t>& instance_host,
                          std::uint32_t a, std::uint32_t b) {
  auto host = [&](std::uint32_t i) { return i < instance_host.size() ? instance_host[i] : ~0u; };
  auto across = [&](std::uint32_t x, std::uint32_t y) {
    return (host(x) == a && host(y) == b) || (host(x) == b && host(y) == a);
  };
  std::vector<std::string> seen;
  auto add = [&](std::string s) {
    if (std::find(seen.begin(), seen.end(), s) == seen.end()) seen.push_back(std::move(s));
  };
  for (const auto& inst : d.instances)
    for (const auto& l : inst.in_links)
      if (across(l.producer, inst.index)) add(l.label);
  for (const auto& inst : d.instances)
    for (const auto& t : inst.tools)
      for (auto j : t.instances)
        if (across(inst.index, j)) add(fmt::format("{} -> {} (calls)", inst.init.name, t.name));
  std::string out;
  for (const auto& s : seen) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace loom::cluster
