// runtime/local/part_value.cpp: an instance's part as a value and back (part_value.hpp).
#include "loom/runtime/local/part_value.hpp"

#include <fmt/format.h>

#include <cstdint>

#include "loom/runtime/json.hpp"

namespace loom::local {
namespace {

value list_of(const std::vector<value>& vs) { return value(value_list(vs.begin(), vs.end())); }

struct bad_part {
  std::string why;
};

const value& field(const value& m, const char* name) {
  const value* f = m.find(name);
  if (!f) throw bad_part{fmt::format("it has no `{}`", name)};
  return *f;
}
const value_list& list_field(const value& m, const char* name) {
  const auto& f = field(m, name);
  if (!f.is_list()) throw bad_part{fmt::format("`{}` is not a list", name)};
  return f.as_list();
}
std::uint64_t index(const value& v, std::uint64_t below, const char* what) {
  if (!v.is_int() || v.as_int() < 0 || static_cast<std::uint64_t>(v.as_int()) >= below)
    throw bad_part{fmt::format("{} {} is not below {}", what, to_json_line(v), below)};
  return static_cast<std::uint64_t>(v.as_int());
}
bool flag(const value& v, const char* what) {
  if (!v.is_bool()) throw bad_part{fmt::format("{} is not a bool", what)};
  return v.as_bool();
}
std::int64_t number(const value& v, const char* what) {
  if (!v.is_int()) throw bad_part{fmt::format("{} is not an integer", what)};
  return v.as_int();
}
const value_list& tuple(const value& v, std::size_t n, const char* what) {
  if (!v.is_list() || v.as_list().size() != n) throw bad_part{fmt::format("a {} is not a list of {}", what, n)};
  return v.as_list();
}

}  // namespace

value to_value(const instance_part& p) {
  value_list replay;
  for (const auto& r : p.replay) replay.emplace_back(value_list{r.close, static_cast<std::uint64_t>(r.port), r.v});
  value_list to_close;
  for (auto port : p.to_close) to_close.emplace_back(static_cast<std::uint64_t>(port));
  value_list inputs;
  for (const auto& r : p.inputs)
    inputs.emplace_back(value_list{static_cast<std::uint64_t>(r.link), list_of(r.values), r.eos, r.ended});
  value_list outputs;
  for (const auto& u : p.outputs) outputs.emplace_back(value_list{static_cast<std::uint64_t>(u.link), list_of(u.values)});
  value_list pending;
  for (const auto& d : p.pending) pending.emplace_back(value_list{d.id, d.shown, d.asked_unix_ms, d.deadline_unix_ms});
  return value(value_map{{"instance", static_cast<std::uint64_t>(p.instance)},
                         {"phase", static_cast<std::uint64_t>(p.state)},
                         {"checkpoint", p.checkpoint},
                         {"replay", value(std::move(replay))},
                         {"to_close", value(std::move(to_close))},
                         {"pulled_all", p.pulled_all},
                         {"inputs", value(std::move(inputs))},
                         {"outputs", value(std::move(outputs))},
                         {"pending", value(std::move(pending))},
                         {"idle", p.idle},
                         {"held", p.held}});
}

std::shared_ptr<instance_part> part_from_value(const value& v, const instance_plan& plan, std::string& error) {
  try {
    if (!v.is_map()) throw bad_part{"it is not a map"};
    auto p = std::make_shared<instance_part>();
    p->instance = static_cast<std::uint32_t>(number(field(v, "instance"), "`instance`"));
    if (p->instance != plan.index) throw bad_part{fmt::format("it is instance {}'s", p->instance)};
    auto phase = index(field(v, "phase"), 3, "phase");
    p->state = static_cast<instance_part::phase>(phase);
    p->checkpoint = field(v, "checkpoint");
    const auto ports = plan.input_names.size();
    for (const auto& r : list_field(v, "replay")) {
      const auto& t = tuple(r, 3, "replayed input");
      p->replay.push_back({flag(t[0], "a replayed input's close"), index(t[1], ports, "the input port"), t[2]});
    }
    for (const auto& port : list_field(v, "to_close")) p->to_close.push_back(index(port, ports, "the input port"));
    p->pulled_all = flag(field(v, "pulled_all"), "`pulled_all`");
    for (const auto& r : list_field(v, "inputs")) {
      const auto& t = tuple(r, 4, "recorded in-link");
      auto link = static_cast<link_id>(index(t[0], plan.in_links.size(), "the in-link"));
      if (!t[1].is_list()) throw bad_part{"a recorded in-link's values are not a list"};
      p->inputs.push_back({link, std::vector<value>(t[1].as_list().begin(), t[1].as_list().end()),
                           flag(t[2], "an in-link's eos"), flag(t[3], "an in-link's end")});
    }
    std::size_t out_links = 0;
    for (const auto& edges : plan.out_ports)
      for (const auto& e : edges) out_links += e.links.size();
    for (const auto& r : list_field(v, "outputs")) {
      const auto& t = tuple(r, 2, "unsent out-link");
      auto link = static_cast<link_id>(index(t[0], out_links, "the out-link"));
      if (!t[1].is_list()) throw bad_part{"an out-link's unsent values are not a list"};
      p->outputs.push_back({link, std::vector<value>(t[1].as_list().begin(), t[1].as_list().end())});
    }
    for (const auto& r : list_field(v, "pending")) {
      const auto& t = tuple(r, 4, "pending decision");
      p->pending.push_back({static_cast<std::uint64_t>(number(t[0], "a decision's id")), t[1],
                            number(t[2], "a decision's time"), number(t[3], "a decision's deadline")});
    }
    p->idle = flag(field(v, "idle"), "`idle`");
    p->held = flag(field(v, "held"), "`held`");
    return p;
  } catch (const bad_part& b) {
    error = fmt::format("the snapshot part of instance {} (`{}`): {}", plan.index, plan.init.name, b.why);
    return nullptr;
  }
}

}  // namespace loom::local
