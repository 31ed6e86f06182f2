// text.upper: an actor kind defined outside loom, in a user's own library, loaded with
// `loom run graph.yaml --plugin libloom_example_plugin.so`.
//   inputs:  in (any)
//   outputs: out (strings upper-cased (ASCII), `prefix` put before them as written; other values unchanged)
//   params:  prefix (string, default "")
// A plugin is written exactly like a built-in kind: a node class, a kind_def with its spec and factory,
// and one registration line, here in loom_register() instead of actors::register_builtins().
#include <cctype>
#include <memory>
#include <string>

#include "loom/runtime/registry.hpp"

namespace {

class upper final : public loom::node {
 public:
  explicit upper(const loom::params& p) : prefix_(p.get_string("prefix")) {}

  void on_message(loom::context& ctx, std::size_t port, const loom::value& v) override {
    if (!v.is_string()) return ctx.emit(0, v);
    std::string s = v.as_string();
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    ctx.emit(0, loom::value(prefix_ + s));
  }

 private:
  std::string prefix_;
};

loom::kind_def upper_kind() {
  using loom::graph::param_spec;
  loom::graph::kind_spec s;
  s.name = "text.upper";
  s.doc = "upper-cases strings (ASCII); other values pass unchanged";
  s.inputs = {{"in", "any values"}};
  s.outputs = {{"out", "strings upper-cased with prefix prepended; other values as received"}};
  s.params = {param_spec::string("prefix", "text put before each string, as written").def("")};
  return {std::move(s), [](const loom::node_init& init) { return std::make_unique<upper>(init.params); }};
}

}  // namespace

// The entry point `loom run --plugin` looks up (dlsym) after loading this library.
extern "C" void loom_register(loom::registry& r) {
  r.add(upper_kind());
}
