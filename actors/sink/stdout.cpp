// sink.stdout: writes each value it receives as one line on standard output.
//   inputs:  in (any)
//   params:  format (string, default "text", one of text|jsonl)
// text: loom::to_text(v); jsonl: loom::to_json_line(v). Each line goes out whole in one fwrite, so lines of
// several sinks never interleave; stdio buffers them (line by line on a terminal, in blocks on a pipe or
// file) and finish flushes stdout. A failed write throws "cannot write stdout: REASON".
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "loom/actors/kinds.hpp"
#include "loom/runtime/json.hpp"

namespace loom::actors {
namespace {

class stdout_sink final : public node {
 public:
  explicit stdout_sink(const params& p) : jsonl_(p.get_string("format") == "jsonl") {}

  void on_message(context& ctx, std::size_t port, const value& v) override {
    std::string line = jsonl_ ? to_json_line(v) : to_text(v);
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) fail();
  }

  void on_finish(context& ctx) override {
    if (std::fflush(stdout) != 0) fail();
  }

 private:
  [[noreturn]] static void fail() {
    throw std::runtime_error(fmt::format("cannot write stdout: {}", std::strerror(errno)));
  }

  bool jsonl_;
};

}  // namespace

kind_def stdout_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "sink.stdout";
  s.doc = "writes each value as one line on standard output";
  s.inputs = {{"in", "any values"}};
  s.params = {param_spec::string("format", "text: strings as they are, the rest as JSON; jsonl: all as JSON")
                  .def("text")
                  .one_of({"text", "jsonl"})};
  return {std::move(s), [](const node_init& init) { return std::make_unique<stdout_sink>(init.params); }};
}

}  // namespace loom::actors
