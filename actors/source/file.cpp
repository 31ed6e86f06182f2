// source.file: reads a text file incrementally (at most ctx.budget() records per pull) and emits its records.
//   outputs: out (string per line, or any value per JSON line)
//   params:  path (string, required), format (string, default "lines", one of lines|jsonl)
// lines: each line as a string, without its "\n" or "\r\n". jsonl: each non-blank line parsed as JSON
// (the shared reader, runtime/json_reader.hpp: at most 64 levels deep; integers above INT64_MAX become
// doubles). A line is at most 16 MiB. Errors: "cannot open PATH: REASON" at start, "cannot read PATH: REASON",
// "PATH:LINE: invalid JSON: ... (column C)", "PATH:LINE: arrays and objects are nested deeper than 64
// levels (column C)" and "PATH:LINE: the line is longer than 16777216 bytes".
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "loom/actors/kinds.hpp"
#include "loom/runtime/json_reader.hpp"

namespace loom::actors {
namespace {

constexpr std::size_t max_line_bytes = json_limits{}.max_bytes;

struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

class file_source final : public node {
 public:
  explicit file_source(const node_init& init)
      : path_(init.params.get_string("path")),
        jsonl_(init.params.get_string("format") == "jsonl"),
        restored_(init.restored) {}

  void on_start(context& ctx) override {
    file_.reset(std::fopen(path_.c_str(), "r"));
    if (!file_) throw std::runtime_error(fmt::format("cannot open {}: {}", path_, std::strerror(errno)));
    // A restart resumes after the last record an earlier attempt emitted (its checkpoint).
    if (const value* at = restored_.find("offset")) {
      if (std::fseek(file_.get(), static_cast<long>(at->as_int()), SEEK_SET) != 0)
        throw std::runtime_error(fmt::format("cannot seek in {}: {}", path_, std::strerror(errno)));
      line_no_ = static_cast<std::size_t>(restored_.find("line")->as_int());
    }
  }

  bool on_pull(context& ctx) override {
    std::size_t n = ctx.budget();
    while (n > 0 && file_ && !ctx.stopping()) {
      if (!read_line()) {
        file_.reset();
        break;
      }
      if (!jsonl_) {
        ctx.emit(value(line_));
        --n;
      } else if (line_.find_first_not_of(" \t") != std::string::npos) {
        ctx.emit(parse_line());
        --n;
      }
    }
    if (file_) ctx.checkpoint(value(value_map{{"offset", value(static_cast<std::int64_t>(std::ftell(file_.get())))},
                                              {"line", value(static_cast<std::int64_t>(line_no_))}}));
    return file_ && !ctx.stopping();
  }

  void on_finish(context& ctx) override { file_.reset(); }

 private:
  // Reads the next line into line_ (without "\n" or "\r\n"); false at the end of the file.
  bool read_line() {
    line_.clear();
    char chunk[4096];
    bool any = false;
    while (std::fgets(chunk, sizeof chunk, file_.get()) != nullptr) {
      any = true;
      line_ += chunk;
      bool ended = !line_.empty() && line_.back() == '\n';
      if (line_.size() - (ended ? 1 : 0) > max_line_bytes)  // never buffer a line without bound
        throw std::runtime_error(
            fmt::format("{}:{}: the line is longer than {} bytes", path_, line_no_ + 1, max_line_bytes));
      if (ended) break;
    }
    if (std::ferror(file_.get()))
      throw std::runtime_error(fmt::format("cannot read {}: {}", path_, std::strerror(errno)));
    if (!any) return false;
    ++line_no_;
    if (!line_.empty() && line_.back() == '\n') line_.pop_back();
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    return true;
  }

  value parse_line() const {
    // The shared reader's limits (docs/limits.md): 64 levels deep, 16 MiB a line; its error reads
    // "PATH:LINE: invalid JSON: ... (column C)" or "PATH:LINE: arrays and objects are nested deeper than ...".
    return read_json_value(line_, fmt::format("{}:{}", path_, line_no_));
  }

  std::string path_;
  bool jsonl_;
  value restored_;
  std::unique_ptr<std::FILE, file_closer> file_;
  std::string line_;
  std::size_t line_no_ = 0;
};

}  // namespace

kind_def file_source_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "source.file";
  s.doc = "emits the records of a text file: lines as strings, or JSON lines as values";
  s.outputs = {{"out", "one value per record, in file order"}};
  s.stateful = true;  // checkpoint: the offset after the last record emitted
  s.params = {param_spec::string("path", "the file to read (relative: to the graph file's folder)").require().file_path(),
              param_spec::string("format", "lines: each line a string; jsonl: each line a JSON value")
                  .def("lines")
                  .one_of({"lines", "jsonl"})};
  return {std::move(s), [](const node_init& init) { return std::make_unique<file_source>(init); }};
}

}  // namespace loom::actors
