// sink.file: writes each value it receives as one line of a file.
//   inputs:  in (any)
//   params:  path (string, required), format (string, default "jsonl", one of jsonl|text),
//            append (boolean, default false), field (string, default "": with a name, a map value is written
//            as that field only, e.g. an agent's `text`; other values as they are)
// jsonl: loom::to_json_line(v); text: loom::to_text(v); each followed by "\n". At start the sink makes the
// path's missing parent folders ("cannot create folder DIR for PATH: REASON") and opens the file ("cannot
// open PATH for writing: REASON"). Records are buffered here and written with write(2) on record boundaries,
// at least every 64 KiB or 1024 records and at finish (which the runtime also calls on SIGINT), so the file
// ends on a complete record. A failed write, fsync or close throws "cannot write PATH: REASON" (ENOSPC: "No
// space left on device"), after cutting the file back to its last complete record.
//
// Durability: on_finish fsyncs the file before it reports done, so a run that ends ok has every record on
// disk. The cost is one fsync per instance and run: the time the disk takes to write what the kernel has
// not written back yet (nothing on tmpfs). A stopped run skips it. Writes while running are not fsynced
// for restarts (their checkpoints serve restarts inside this process, which read the same page cache), but
// a durable run's snapshot (`--state`, node::on_snapshot) fdatasyncs the file before the sink's part is
// sent: the length a snapshot holds is on disk before the snapshot is, so a resume after a power loss finds
// every byte it counts (one fdatasync per sink and snapshot, once a second by default).
//
// Restarts keep each record once. The sink checkpoints the file's length only after a write, taken from the
// file (fstat), so a checkpoint never counts a byte that is not in the file; the records handled since stay
// in the runtime's replay (docs/design.md, "Delivery, restarts, cancel"). A fresh instance cuts the file
// back to the checkpoint (dropping what a failed attempt wrote past it), is given those records again and
// appends. It never extends the file: one shorter than its checkpoint lost records that were written (it
// was cut or replaced behind the sink's back), and the restart fails naming the path. A full disk is
// retried by each restart (the space may have come back) and then fails the run with the path and error.
// A path that is not a regular file (a FIFO, /dev/null) cannot be cut back: as with sink.stdout, a restart
// writes again the records since the last write.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "loom/actors/kinds.hpp"
#include "loom/runtime/json.hpp"

namespace loom::actors {
namespace {

// A write every this many bytes or records: the checkpoint follows it, and the records since it are what
// the runtime keeps for a restart (so the count bounds that memory too).
constexpr std::size_t flush_bytes = 64 * 1024;
constexpr std::size_t flush_records = 1024;

class file_sink final : public node {
 public:
  explicit file_sink(const node_init& init)
      : path_(init.params.get_string("path")),
        jsonl_(init.params.get_string("format") == "jsonl"),
        append_(init.params.get_bool("append")),
        field_(init.params.get_string("field")),
        restored_(init.restored) {}

  // An instance that did not finish (it failed, or is replaced by a restart) drops what it buffered: the
  // restart writes those records again.
  ~file_sink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void on_start(context& ctx) override {
    make_folders();
    bool resume = restored_.is_int();
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append_ || resume ? O_APPEND : O_TRUNC);
    fd_ = ::open(path_.c_str(), flags, 0666);
    if (fd_ < 0)
      throw std::runtime_error(fmt::format("cannot open {} for writing: {}", path_, std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) failed(errno);
    regular_ = S_ISREG(st.st_mode);
    if (!resume) {
      length_ = regular_ ? static_cast<std::int64_t>(st.st_size) : 0;
    } else {
      length_ = restored_.as_int();
      if (regular_ && st.st_size < length_)
        throw std::runtime_error(fmt::format(
            "cannot resume writing {}: it holds {} bytes, fewer than the {} written before this restart (records "
            "were lost: the file was cut or replaced while the run wrote it)",
            path_, static_cast<std::int64_t>(st.st_size), length_));
      if (regular_ && st.st_size > length_ && ::ftruncate(fd_, static_cast<off_t>(length_)) != 0) failed(errno);
    }
    ctx.checkpoint(value(length_));
  }

  void on_message(context& ctx, std::size_t port, const value& in) override {
    const value* field = field_.empty() ? nullptr : in.find(field_);
    const value& v = field ? *field : in;
    buffer_ += jsonl_ ? to_json_line(v) : to_text(v);
    buffer_ += '\n';
    if (buffer_.size() >= flush_bytes || ++records_ >= flush_records) {
      flush();
      ctx.checkpoint(value(length_));
    }
  }

  void on_snapshot() override {
    if (fd_ >= 0 && regular_ && ::fdatasync(fd_) != 0)
      throw std::runtime_error(fmt::format("cannot sync {} to disk for a snapshot: {}", path_, std::strerror(errno)));
  }

  void on_finish(context& ctx) override {
    if (fd_ < 0) return;
    flush();
    // A stopped run (SIGINT, another node failed) does not end ok: it skips the fsync, which could hold
    // its exit for as long as the kernel takes to write the file back.
    if (regular_ && !ctx.stopping() && ::fsync(fd_) != 0) failed(errno);
    ctx.checkpoint(value(length_));
    if (::close(std::exchange(fd_, -1)) != 0) failed(errno);
  }

 private:
  void make_folders() const {
    auto parent = std::filesystem::path(path_).parent_path();
    if (parent.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec)
      throw std::runtime_error(
          fmt::format("cannot create folder {} for {}: {}", parent.string(), path_, ec.message()));
  }

  // Writes the buffer; the length is then the file's own.
  void flush() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      auto n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) failed(n < 0 ? errno : EIO);
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
    records_ = 0;
    if (!regular_) {
      length_ += static_cast<std::int64_t>(done);
      return;
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) failed(errno);
    length_ = static_cast<std::int64_t>(st.st_size);
  }

  // Leaves the file on its last complete record (a write cut short by a full disk leaves part of one; a
  // restart would cut it back anyway) and throws.
  [[noreturn]] void failed(int error) {
    if (regular_ && fd_ >= 0 && ::ftruncate(fd_, static_cast<off_t>(length_)) != 0) {
      // nothing more to do: the error that matters is `error`
    }
    throw std::runtime_error(fmt::format("cannot write {}: {}", path_, std::strerror(error)));
  }

  std::string path_;
  bool jsonl_, append_;
  std::string field_;
  value restored_;            // the file's length at the last checkpoint of an earlier attempt
  int fd_ = -1;
  bool regular_ = false;      // a regular file, which can be cut back (known once it is open)
  std::string buffer_;        // records not written yet
  std::size_t records_ = 0;   // how many
  std::int64_t length_ = 0;   // the file's length after the last write
};

}  // namespace

kind_def file_sink_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "sink.file";
  s.doc = "writes each value as one line of a file (JSON lines or text)";
  s.inputs = {{"in", "any values"}};
  s.stateful = true;  // checkpoint: the file's length after its last write
  s.params = {param_spec::string("path",
                                 "the file to write (relative: to the graph file's folder); missing folders are made")
                  .require()
                  .file_path(),
              param_spec::string("format", "jsonl: one JSON value per line; text: strings as they are")
                  .def("jsonl")
                  .one_of({"jsonl", "text"}),
              param_spec::boolean("append", "append to the file instead of replacing it").def(false),
              param_spec::string("field", "write only this field of map values (e.g. an agent's text)").def("")};
  return {std::move(s), [](const node_init& init) { return std::make_unique<file_sink>(init); }};
}

}  // namespace loom::actors
