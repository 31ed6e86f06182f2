// actors/flow/jq_program.cpp: see jq_program.hpp.
#include "loom/actors/flow/jq_program.hpp"

#include <fmt/format.h>
extern "C" {  // jq 1.6's headers do not say so themselves
#include <jq.h>
}
#include <nlohmann/json.hpp>

#include <cmath>
#include <memory>
#include <mutex>

#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/params.hpp"

namespace loom::actors::jq {

namespace {

// A jv we own: freed once (jv values are reference counted; every jv_* call consumes its arguments).
class owned_jv {
 public:
  explicit owned_jv(jv v) : v_(v) {}
  ~owned_jv() { jv_free(v_); }
  owned_jv(const owned_jv&) = delete;
  owned_jv& operator=(const owned_jv&) = delete;
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

}  // namespace

struct access {
  using big_int = program::big_int;

  static jv to_jv(const value& v, std::vector<big_int>& bigs, int depth = 0) {
    if (depth > 512) throw failure("a value nested deeper than 512 levels");
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

  static value number_of(double d, const std::vector<big_int>& bigs) {
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
  static value from_jv(jv v, const std::vector<big_int>& bigs, int depth = 0) {
    owned_jv held(v);
    if (depth > 512) throw failure("the program gave a value nested deeper than 512 levels");
    switch (jv_get_kind(v)) {
      case JV_KIND_NULL: return value{};
      case JV_KIND_FALSE: return value{false};
      case JV_KIND_TRUE: return value{true};
      case JV_KIND_NUMBER: return number_of(jv_number_value(v), bigs);
      case JV_KIND_STRING:
        return value{std::string(jv_string_value(v), static_cast<std::size_t>(jv_string_length_bytes(jv_copy(v))))};
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
};

program::program(std::string text, value args) : text_(std::move(text)), args_(std::move(args)) { compile(); }

program::~program() { jq_teardown(&jq_); }

std::string program::errors() const {
  return errors_.empty() ? "jq did not compile the program" : fmt::format("{}", fmt::join(errors_, "; "));
}

namespace {

// jq's regexes (test, match, sub, ...) go to Oniguruma, which sets up its global tables (encodings, callout
// names) on the first regex compiled in the process, without a lock: two jq_states on two threads meeting
// their first regex at once both build the tables, one set is lost (LeakSanitizer saw it) and the other may
// be torn. So the process's first program runs one regex alone, before any program exists.
void set_up_regex_engine_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    jq_state* jq = jq_init();
    if (jq == nullptr) return;
    if (jq_compile(jq, "test(\"a\")") != 0) {
      jq_start(jq, jv_string("a"), 0);
      for (;;) {
        jv r = jq_next(jq);
        bool more = jv_is_valid(r);
        jv_free(r);
        if (!more) break;
      }
    }
    jq_teardown(&jq);
  });
}

}  // namespace

void program::compile() {
  set_up_regex_engine_once();
  jq_ = jq_init();
  if (jq_ == nullptr) throw std::runtime_error("jq_init failed");
  jq_set_error_cb(jq_, &access::collect, this);
  arg_bigs_.clear();
  errors_.clear();
  halted_ = false;
  jv a = args_.is_map() ? access::to_jv(args_, arg_bigs_) : jv_object();
  ok_ = jq_compile_args(jq_, text_.c_str(), a) != 0;  // consumes `a`
}

void program::run(const value& v, const std::function<void(value)>& on_output) {
  if (halted_) {  // see below: a fresh jq_state, the program compiled again
    jq_teardown(&jq_);
    compile();
    if (!ok_) throw std::logic_error("the jq program compiled once and not again: " + errors());
  }
  bigs_ = arg_bigs_;  // an integer of the args is given back as well as one of the value
  jv in = access::to_jv(v, bigs_);
  jq_start(jq_, in, 0);
  for (;;) {
    jv r = jq_next(jq_);
    if (jv_is_valid(r)) {
      on_output(access::from_jv(r, bigs_));
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
    throw failure(message);
  }
}

std::vector<value> program::outputs(const value& v) {
  std::vector<value> out;
  run(v, [&](value o) { out.push_back(std::move(o)); });
  return out;
}

value program::one(const value& v, const char* what) {
  auto out = outputs(v);
  if (out.size() != 1)
    throw failure(fmt::format("{} (`{}`) gave {} outputs; it must give exactly one", what, text_, out.size()));
  return std::move(out.front());
}

bool check_param(const graph::node& n, const std::string& kind, const std::string& param, const value& args,
                 graph::diagnostics& diags) {
  const graph::config* text = n.params.find(param);
  if (text == nullptr || !text->is_string()) return true;
  program p(text->as_string(), args);
  if (p.ok()) return true;
  graph::location where = text->where().known() ? text->where() : n.field_where("params");
  std::string which = param == "program" ? "" : param + ": ";
  diags.error(where, fmt::format("{} `{}`: {}the jq program does not compile: {}", kind, n.name, which, p.errors()),
              "see the jq manual (jq 1.6): https://jqlang.github.io/jq/manual/v1.6/");
  return false;
}

std::string excerpt(const value& v) {
  std::string text = to_json_line(v);
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

}  // namespace loom::actors::jq
