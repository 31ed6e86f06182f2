// sink.file: writes each value it receives as one line of a file.
//   inputs:  in (any)
//   params:  path (string, required), format (string, default "jsonl", one of jsonl|text),
//            append (boolean, default false), field (string, default "": with a name, a map value is written
//            as that field only, e.g. an agent's `text`; other values as they are)
// jsonl: loom::to_json_line(v); text: loom::to_text(v); each followed by "\n". The file is opened at start
// ("cannot open PATH for writing: REASON"), buffered by stdio and flushed on record boundaries at least
// every 64 KiB, so after a flush (and after on_finish, which the runtime also calls on SIGINT) the file
// ends on a complete record. A failed write, flush or close throws "cannot write PATH: REASON".
// Restarts keep each record once: the sink checkpoints the file's length after each record; a fresh
// instance cuts the file back to that length (dropping what a failed attempt wrote) and appends.
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/kinds.hpp"
#include "runtime/json.hpp"

namespace loom::actors {
namespace {

constexpr std::size_t flush_every = 64 * 1024;
constexpr std::size_t stdio_buffer = 256 * 1024;  // > flush_every: stdio never splits a small record

struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

class file_sink final : public node {
 public:
  explicit file_sink(const node_init& init)
      : path_(init.params.get_string("path")),
        jsonl_(init.params.get_string("format") == "jsonl"),
        append_(init.params.get_bool("append")),
        field_(init.params.get_string("field")),
        restored_(init.restored) {}

  void on_start(context& ctx) override {
    bool resume = restored_.is_int();
    if (resume && ::truncate(path_.c_str(), static_cast<off_t>(restored_.as_int())) != 0) fail();
    file_.reset(std::fopen(path_.c_str(), append_ || resume ? "a" : "w"));
    if (!file_)
      throw std::runtime_error(fmt::format("cannot open {} for writing: {}", path_, std::strerror(errno)));
    buffer_.resize(stdio_buffer);
    std::setvbuf(file_.get(), buffer_.data(), _IOFBF, buffer_.size());
    if (std::fseek(file_.get(), 0, SEEK_END) != 0) fail();
    length_ = static_cast<std::int64_t>(std::ftell(file_.get()));
    ctx.checkpoint(value(length_));
  }

  void on_message(context& ctx, std::size_t port, const value& in) override {
    const value* field = field_.empty() ? nullptr : in.find(field_);
    const value& v = field ? *field : in;
    std::string line = jsonl_ ? to_json_line(v) : to_text(v);
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), file_.get()) != line.size()) fail();
    pending_ += line.size();
    length_ += static_cast<std::int64_t>(line.size());
    ctx.checkpoint(value(length_));
    if (pending_ >= flush_every) flush();
  }

  void on_finish(context& ctx) override {
    if (!file_) return;
    flush();
    if (std::fclose(file_.release()) != 0) fail();
  }

 private:
  void flush() {
    if (std::fflush(file_.get()) != 0 || std::ferror(file_.get())) fail();
    pending_ = 0;
  }

  [[noreturn]] void fail() const {
    throw std::runtime_error(fmt::format("cannot write {}: {}", path_, std::strerror(errno)));
  }

  std::string path_;
  bool jsonl_, append_;
  std::string field_;
  std::vector<char> buffer_;  // stdio's buffer: declared before file_, so it outlives it
  std::unique_ptr<std::FILE, file_closer> file_;
  std::size_t pending_ = 0;  // bytes written since the last flush
  value restored_;           // the file's length after the last record of an earlier attempt
  std::int64_t length_ = 0;  // the file's length after the last record written
};

}  // namespace

kind_def file_sink_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "sink.file";
  s.doc = "writes each value as one line of a file (JSON lines or text)";
  s.inputs = {{"in", "any values"}};
  s.stateful = true;  // checkpoint: the file's length after the last record
  s.params = {param_spec::string("path", "the file to write (relative: to the graph file's folder)").require().file_path(),
              param_spec::string("format", "jsonl: one JSON value per line; text: strings as they are")
                  .def("jsonl")
                  .one_of({"jsonl", "text"}),
              param_spec::boolean("append", "append to the file instead of replacing it").def(false),
              param_spec::string("field", "write only this field of map values (e.g. an agent's text)").def("")};
  return {std::move(s), [](const node_init& init) { return std::make_unique<file_sink>(init); }};
}

}  // namespace loom::actors
