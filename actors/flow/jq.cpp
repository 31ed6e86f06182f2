// flow.jq: runs a jq program (Debian's libjq 1.6) on each value and emits every output it gives: none
// (a filter), one (a map) or many (a flatten), in order.
//   inputs:  in (any)
//   outputs: out (the program's outputs)
//   params:  program (string, required), args (map, default {}: each NAME -> value is $NAME in the program)
// The program is compiled once, when the node starts (and by `loom validate`, which reports a syntax
// error at the `program` param); each instance has its own jq_state.
//
// Values cross into jq as jv built directly from loom::value (no JSON text), and come back the same way.
// jq 1.6 holds every number as a double: a float, 1/3 included, goes through unchanged, and an integer
// comes back as an integer while the double holds it exactly (|i| <= 2^53). A larger integer
// (1234567890123456789) is rounded inside jq, as the jq command rounds it; when such a number comes out
// of the program as the very double the input's integer became, and no other integer of that value became
// the same double, it is given back as the input's integer (or the args'), so `.`, `.id`, `{id, name}`
// keep it exactly (arithmetic on it still sees the double). Any other integral number comes back as an integer, so a float
// 2.0 comes back as 2 (jq does not tell them apart); bytes and tensors cross as loom's JSON forms.
#include <fmt/format.h>
extern "C" {  // jq 1.6's headers do not say so themselves
#include <jq.h>
}
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/actors/kinds.hpp"
#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/json.hpp"

namespace loom::actors {
namespace {

// A jv we own: freed once (jv values are reference counted; every jv_* call consumes its arguments).
class owned_jv {
 public:
  explicit owned_jv(jv v) : v_(v) {}
  ~owned_jv() { jv_free(v_); }
  owned_jv(const owned_jv&) = delete;
  owned_jv& operator=(const owned_jv&) = delete;
  jv copy() const { return jv_copy(v_); }
  jv get() const { return v_; }  // borrowed

 private:
  jv v_;
};

std::string jv_text(jv borrowed) {  // a jv as compact JSON (or its string), for messages
  if (jv_get_kind(borrowed) == JV_KIND_STRING) return jv_string_value(borrowed);
  jv s = jv_dump_string(jv_copy(borrowed), 0);
  std::string out = jv_string_value(s);
  jv_free(s);
  return out;
}

// An integer of the input that a double cannot hold: the double jq sees, and the integer it was.
struct big_int {
  double as_double;
  std::int64_t original;
};

jv to_jv(const value& v, std::vector<big_int>& bigs, int depth = 0) {
  if (depth > 512) throw std::invalid_argument("a value nested deeper than 512 levels");
  switch (v.kind()) {
    case value::type::null: return jv_null();
    case value::type::boolean: return jv_bool(v.as_bool());
    case value::type::integer: {
      std::int64_t i = v.as_int();
      double d = static_cast<double>(i);
      // d == 2^63 when i rounds up past INT64_MAX: never equal, and not converted back (undefined).
      if (d >= 9223372036854775808.0 || static_cast<std::int64_t>(d) != i) bigs.push_back({d, i});
      return jv_number(d);
    }
    case value::type::floating: return jv_number(v.as_float());
    case value::type::string: {
      const auto& s = v.as_string();
      return jv_string_sized(s.data(), static_cast<int>(s.size()));
    }
    case value::type::list: {
      jv a = jv_array_sized(static_cast<int>(v.as_list().size()));
      try {
        for (const auto& e : v.as_list()) a = jv_array_append(a, to_jv(e, bigs, depth + 1));
      } catch (...) {
        jv_free(a);
        throw;
      }
      return a;
    }
    case value::type::map: {
      jv o = jv_object();
      try {
        for (const auto& [k, e] : v.as_map()) {
          jv field = to_jv(e, bigs, depth + 1);
          o = jv_object_set(o, jv_string_sized(k.data(), static_cast<int>(k.size())), field);
        }
      } catch (...) {
        jv_free(o);
        throw;
      }
      return o;
    }
    default: {  // bytes and tensors: loom's JSON form ({"$bytes": ...}, {"$tensor": ...})
      std::string text = to_json_line(v);
      return jv_parse_sized(text.data(), static_cast<int>(text.size()));
    }
  }
}

value number_of(double d, const std::vector<big_int>& bigs) {
  const big_int* match = nullptr;
  for (const auto& b : bigs) {
    if (b.as_double != d) continue;
    if (match != nullptr && match->original != b.original) {  // two integers became this double
      match = nullptr;
      break;
    }
    match = &b;
  }
  if (match != nullptr) return value{match->original};
  if (std::trunc(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
    return value{static_cast<std::int64_t>(d)};
  return value{d};
}

// Takes `v` (consumes it).
value from_jv(jv v, const std::vector<big_int>& bigs, int depth = 0) {
  owned_jv held(v);
  if (depth > 512) throw std::invalid_argument("the program gave a value nested deeper than 512 levels");
  switch (jv_get_kind(v)) {
    case JV_KIND_NULL: return value{};
    case JV_KIND_FALSE: return value{false};
    case JV_KIND_TRUE: return value{true};
    case JV_KIND_NUMBER: return number_of(jv_number_value(v), bigs);
    case JV_KIND_STRING: return value{std::string(jv_string_value(v), static_cast<std::size_t>(jv_string_length_bytes(jv_copy(v))))};
    case JV_KIND_ARRAY: {
      int n = jv_array_length(jv_copy(v));
      value_list l;
      l.reserve(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) l.push_back(from_jv(jv_array_get(jv_copy(v), i), bigs, depth + 1));
      return value{std::move(l)};
    }
    case JV_KIND_OBJECT: {
      if (jv_object_length(jv_copy(v)) == 1) {  // loom's JSON forms of bytes and tensors
        jv only = jv_object_iter_key(v, jv_object_iter(v));
        std::string key = jv_string_value(only);
        jv_free(only);
        if (key == "$bytes" || key == "$tensor") return from_json(nlohmann::ordered_json::parse(jv_text(v)));
      }
      value_map m;
      for (int it = jv_object_iter(v); jv_object_iter_valid(v, it); it = jv_object_iter_next(v, it)) {
        jv k = jv_object_iter_key(v, it);
        std::string key(jv_string_value(k), static_cast<std::size_t>(jv_string_length_bytes(jv_copy(k))));
        jv_free(k);
        m.emplace_back(std::move(key), from_jv(jv_object_iter_value(v, it), bigs, depth + 1));
      }
      return value{std::move(m)};
    }
    default: return value{};
  }
}

// One compiled program and its jq_state.
class program {
 public:
  // Compiles `text` with `args` as $NAME; errors() says what jq reported when it failed.
  program(std::string text, value args) : text_(std::move(text)), args_(std::move(args)) { compile(); }
  ~program() { jq_teardown(&jq_); }
  program(const program&) = delete;
  program& operator=(const program&) = delete;

  bool ok() const { return ok_; }
  std::string errors() const { return errors_.empty() ? "jq did not compile the program" : fmt::format("{}", fmt::join(errors_, "; ")); }

  // Runs the program on `v`, emitting each output on port 0; throws with jq's message on an error.
  void run(context& ctx, const value& v) {
    if (halted_) {  // see below: a fresh jq_state, the program compiled again
      jq_teardown(&jq_);
      compile();
      if (!ok_) throw std::logic_error("flow.jq: the program compiled once and not again: " + errors());
    }
    bigs_ = arg_bigs_;  // an integer of the args is given back as well as one of the value
    jv in;
    try {
      in = to_jv(v, bigs_);
    } catch (const std::invalid_argument& e) {
      fail(ctx, v, e.what());
    }
    jq_start(jq_, in, 0);
    for (;;) {
      jv r = jq_next(jq_);
      if (jv_is_valid(r)) {
        value out;
        try {
          out = from_jv(r, bigs_);
        } catch (const std::invalid_argument& e) {
          fail(ctx, v, e.what());
        }
        ctx.emit(0, std::move(out));
        continue;
      }
      std::string message;
      if (jq_halted(jq_)) {  // `halt` ends this value's outputs; `halt_error` is an error
        // libjq 1.6's jq_start frees a halt's exit code and message without forgetting them, so the
        // next jq_start would free them again (a double free): this jq_state is not used again.
        halted_ = true;
        jv_free(r);
        owned_jv code(jq_get_exit_code(jq_));
        if (!jv_is_valid(code.get())) return;
        owned_jv m(jq_get_error_message(jq_));
        message = jv_is_valid(m.get()) ? jv_text(m.get()) : "halt_error";
        if (message.ends_with('\n')) message.pop_back();
      } else if (jv_invalid_has_msg(jv_copy(r))) {
        owned_jv m(jv_invalid_get_msg(r));
        message = jv_text(m.get());
      } else {
        jv_free(r);
        return;  // no more outputs
      }
      fail(ctx, v, message);
    }
  }

 private:
  void compile() {
    jq_ = jq_init();
    if (jq_ == nullptr) throw std::runtime_error("jq_init failed");
    jq_set_error_cb(jq_, &program::collect, this);
    arg_bigs_.clear();
    errors_.clear();
    halted_ = false;
    jv a = args_.is_map() ? to_jv(args_, arg_bigs_) : jv_object();
    ok_ = jq_compile_args(jq_, text_.c_str(), a) != 0;  // consumes `a`
  }

  [[noreturn]] static void fail(context& ctx, const value& v, const std::string& message) {
    std::string text = to_json_line(v);
    if (text.size() > 200) text = text.substr(0, 200) + "...";
    throw std::runtime_error(fmt::format("flow.jq `{}`: jq failed on value {}: {}", ctx.node_name(), text, message));
  }

  static void collect(void* self, jv message) {
    auto* p = static_cast<program*>(self);
    std::string text = jv_text(message);
    jv_free(message);
    if (text.starts_with("jq: error: ")) text.erase(0, 11);
    text = text.substr(0, text.find('\n'));  // what follows is the program itself
    if (auto shell = text.find(" (Unix shell quoting issues?)"); shell != std::string::npos) text.erase(shell, 29);
    if (text.ends_with(':')) text.pop_back();
    // jq ends with a count ("jq: 1 compile error"), which says nothing the messages do not.
    if (text.starts_with("jq: ") && text.find("compile error") != std::string::npos) return;
    p->errors_.push_back(std::move(text));
  }

  std::string text_;
  value args_;
  jq_state* jq_ = nullptr;
  bool ok_ = false;
  bool halted_ = false;
  std::vector<std::string> errors_;
  std::vector<big_int> arg_bigs_, bigs_;
};

class jq_node final : public node {
 public:
  explicit jq_node(const node_init& init) : program_(init.params.get_string("program"), init.params.get("args")) {
    if (!program_.ok())
      throw std::invalid_argument(fmt::format("flow.jq `{}`: program: {}", init.name, program_.errors()));
  }

  void on_message(context& ctx, std::size_t port, const value& v) override { program_.run(ctx, v); }
  bool handles_runs() const override { return true; }
  void on_run(context& ctx, std::size_t port, std::span<const value> values) override {
    for (const auto& v : values) program_.run(ctx, v);
  }

 private:
  program program_;
};

// Validation: the program compiles with the node's args, reported at the `program` param.
void check_program(const graph::graph& g, const graph::node& n, const graph::kind_catalog& catalog,
                   graph::diagnostics& diags) {
  const graph::config* text = n.params.find("program");
  if (text == nullptr || !text->is_string()) return;
  const graph::config* args = n.params.find("args");
  program p(text->as_string(), args != nullptr ? to_value(*args) : value{value_map{}});
  if (p.ok()) return;
  graph::location where = text->where().known() ? text->where() : n.field_where("params");
  diags.error(where, fmt::format("flow.jq `{}`: the jq program does not compile: {}", n.name, p.errors()),
              "see the jq manual (jq 1.6): https://jqlang.github.io/jq/manual/v1.6/");
}

}  // namespace

kind_def jq_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "flow.jq";
  s.doc = "runs a jq program on each value and emits its every output (none: filter, one: map, many: flatten)";
  s.inputs = {{"in", "any values (as JSON)"}};
  s.outputs = {{"out", "every output of the program, in order"}};
  s.params = {
      param_spec::string("program", "the jq program (jq 1.6), e.g. `select(.x > 1) | {id, x}` (numbers: "
                         "docs/graph-format.md)")
          .require(),
      param_spec::map("args", "NAME -> value, each available to the program as $NAME (like jq --arg)")
          .def(graph::config(graph::config_map{})),
  };
  s.check = check_program;
  return {std::move(s), [](const node_init& init) { return std::make_unique<jq_node>(init); }};
}

}  // namespace loom::actors
