// tests/cli/disk_full_test.cpp: `sink.file` on a disk that fills up, as a user meets it: `loom run` in a
// mount namespace of its own (unshare -m as root, unshare -rm, a user namespace, otherwise; its mounts
// private to it) with a 16 KiB tmpfs mounted at a temporary folder, gone with the namespace when the run
// ends. A full disk fails the run with the path and "No space left on device", restarts or not, and the
// file keeps complete records in order, never bytes it did not write; a run whose records fit ends ok
// with each record once. Where no mount namespace can be made, the cases say so and check nothing.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/cli/process.hpp"

namespace fs = std::filesystem;
using loom::test::loom_binary;
using loom::test::process_result;
using loom::test::run_process;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A temporary folder with `mnt/` (where the tmpfs goes) and `kept/` (where the script copies the sink's
// file before the namespace, and the tmpfs with it, goes away). Removed at the end.
class disk {
 public:
  disk() : dir_(fs::temp_directory_path() / ("loom-disk-full-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "mnt");
    fs::create_directories(dir_ / "kept");
  }
  ~disk() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  disk(const disk&) = delete;
  disk& operator=(const disk&) = delete;

  fs::path dir() const { return dir_; }
  std::string mnt() const { return (dir_ / "mnt").string(); }

  // The unshare option that gives this process a mount namespace it may mount a tmpfs in; empty if none.
  static std::string namespace_option() {
    for (std::string opt : {"-m", "-rm"}) {
      auto r = run_process({"/usr/bin/unshare", opt, "--propagation", "private", "/bin/sh", "-c",
                            "mount -t tmpfs -o size=16k tmpfs /mnt"});
      if (r.status == 0) return opt;
    }
    return "";
  }

  // Runs `loom run graph` with a `size` tmpfs at mnt(); copies mnt()/out.jsonl to kept/ afterwards.
  process_result run(const std::string& opt, const fs::path& graph, const std::string& size = "16k") const {
    auto script = "mount -t tmpfs -o size=" + size + " tmpfs '" + mnt() + "' || exit 90; '" + loom_binary() +
                  "' run '" + graph.string() + "'; rc=$?; cp '" + mnt() + "/out.jsonl' '" +
                  (dir_ / "kept").string() + "/' 2>/dev/null; exit $rc";
    loom::test::process_options o;
    o.deadline = std::chrono::milliseconds(60000);
    return run_process({"/usr/bin/unshare", opt, "--propagation", "private", "/bin/sh", "-c", script}, o);
  }

  std::string kept() const { return read_file(dir_ / "kept/out.jsonl"); }

 private:
  fs::path dir_;
};

// A graph file in `d` that writes `count` integers to mnt/out.jsonl with `restarts`.
fs::path sequence_graph(const disk& d, int count, int restarts) {
  auto graph = d.dir() / "g.yaml";
  std::ofstream(graph) << "graph: disk\nnodes:\n  src: {kind: source.sequence, params: {count: " << count
                       << "}}\n  out: {kind: sink.file, params: {path: " << d.mnt()
                       << "/out.jsonl}, restarts: " << restarts << "}\nedges:\n  - src -> out\n";
  return graph;
}

// True when `text` is "0\n1\n...(n-1)\n" for some n; n in `records`.
bool complete_prefix(const std::string& text, int& records) {
  std::string expect;
  records = 0;
  while (expect.size() < text.size()) expect += std::to_string(records++) + "\n";
  return expect == text;
}

}  // namespace

TEST_CASE("sink.file on a full disk fails the run naming the path, restarts or not" * doctest::timeout(120)) {
  auto opt = disk::namespace_option();
  if (opt.empty()) {
    MESSAGE("skipped: this process may not make a mount namespace (unshare -m / -rm) to mount a tmpfs in");
    return;
  }
  for (int restarts : {0, 2}) {
    CAPTURE(restarts);
    disk d;
    // 8,000 integers need 38,890 bytes; the disk holds 16 KiB.
    auto r = d.run(opt, sequence_graph(d, 8000, restarts));
    INFO("stderr: " << r.err);
    REQUIRE(r.status != 90);
    CHECK(r.status == 1);
    CHECK(r.err.find("cannot write " + d.mnt() + "/out.jsonl: No space left on device") != std::string::npos);
    CHECK(r.err.find("node `out` (sink.file)") != std::string::npos);
    if (restarts > 0) CHECK(r.err.find("after 2 restarts") != std::string::npos);
    // What is there is whole records, in order, each once: no NUL bytes, no cut record.
    auto text = d.kept();
    int records = 0;
    CHECK(complete_prefix(text, records));
    CHECK(records > 1000);
    CHECK(records < 8000);
  }
}

TEST_CASE("sink.file on a small disk whose records fit ends ok with each record once" * doctest::timeout(120)) {
  auto opt = disk::namespace_option();
  if (opt.empty()) {
    MESSAGE("skipped: this process may not make a mount namespace (unshare -m / -rm) to mount a tmpfs in");
    return;
  }
  disk d;
  // 3,000 integers: 13,890 bytes, written in three full writes of 1,024 records and one at finish.
  auto r = d.run(opt, sequence_graph(d, 3000, 2));
  INFO("stderr: " << r.err);
  CHECK(r.status == 0);
  int records = 0;
  CHECK(complete_prefix(d.kept(), records));
  CHECK(records == 3000);
}
