// actors/flow/jq_program.hpp: internal to loom_actors. One compiled jq program (Debian's libjq 1.6) and its
// jq_state, shared by the kinds that take jq programs: flow.jq (the program is the node), flow.call (the
// arguments of each call), flow.vote (the key that matches answers, a comparison).
//
// Values cross into jq as jv built directly from loom::value (no JSON text), and come back the same way.
// jq 1.6 holds every number as a double: a float, 1/3 included, goes through unchanged, and an integer
// comes back as an integer while the double holds it exactly (|i| <= 2^53). A larger integer
// (1234567890123456789) is rounded inside jq, as the jq command rounds it; when such a number comes out
// of the program as the very double the input's integer became, and no other integer of that value became
// the same double, it is given back as the input's integer (or the args'), so `.`, `.id`, `{id, name}`
// keep it exactly (arithmetic on it still sees the double). Any other integral number comes back as an
// integer, so a float 2.0 comes back as 2 (jq does not tell them apart); bytes and tensors cross as
// loom's JSON forms.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/graph/config.hpp"
#include "loom/graph/graph.hpp"
#include "loom/runtime/value.hpp"

struct jq_state;

namespace loom::graph {
class diagnostics;
}

namespace loom::actors::jq {

// jq stopped with an error on a value: what() is jq's message (or `halt_error`'s).
struct failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class program {
 public:
  // Compiles `text` with `args` (a map, or null for none) as $NAME; ok() says whether it compiled.
  program(std::string text, value args);
  ~program();
  program(const program&) = delete;
  program& operator=(const program&) = delete;

  bool ok() const { return ok_; }
  // What jq reported when it did not compile.
  std::string errors() const;
  const std::string& text() const { return text_; }

  // Runs the program on `v` and calls `on_output` with each of its outputs, in order. Throws failure with
  // jq's message on an error (what was given to on_output before stays given).
  void run(const value& v, const std::function<void(value)>& on_output);
  // Every output of the program on `v`.
  std::vector<value> outputs(const value& v);
  // The one output of the program on `v`: failure when it gives none or more than one (`what` names the
  // program for that message, e.g. "args").
  value one(const value& v, const char* what);

 private:
  void compile();

  std::string text_;
  value args_;
  jq_state* jq_ = nullptr;
  bool ok_ = false;
  bool halted_ = false;
  std::vector<std::string> errors_;
  struct big_int {
    double as_double;
    std::int64_t original;
  };
  std::vector<big_int> arg_bigs_, bigs_;
  friend struct access;
};

// Validation of a node's jq program param `param` (a string), compiled with `args` (a map, or null): an
// error at the param's location naming the node, `kind` and jq's message when it does not compile.
// Returns whether it compiled (or was not there to check).
bool check_param(const graph::node& n, const std::string& kind, const std::string& param, const value& args,
                 graph::diagnostics& diags);

// A value cut to at most 200 characters of compact JSON, for messages.
std::string excerpt(const value& v);

}  // namespace loom::actors::jq
