// runtime/observe/ui/ui_server.hpp: the live view of a run (`--ui ADDR`), an HTTP server of its own:
//   GET /            the page (runtime/observe/ui/page/, built into the binary): no external URL
//   GET /graph.svg   the graph laid out by Graphviz, ids n<i> (nodes), e<i> (edges), h<i> (host groups)
//   GET /events      server-sent events: one JSON snapshot per progress tick (see snapshot())
//   GET /snapshot    the latest snapshot as plain JSON
//   GET /decisions   the decisions the run waits for (a durable run with human.approve; set_decisions())
//   POST /decide     a person's decision: {"instance", "id", "verdict": approve|reject|edit, "value", "reason"}
// It listens on a loom HTTP listener (runtime/http/listener.hpp): the port is its own (a second process on
// it fails), Host must be one of its names and Origin its own (else 403), and each /events stream holds one
// of max_streams slots (beyond: 503 with Retry-After) so that open pages never starve /snapshot and the rest.
// Snapshots are made from the run's progress reports (every 500 ms), never per message: publish() turns a
// report into JSON once and swaps it in; each /events connection sends the newest one it has not sent, so a
// slow browser skips frames and nothing grows. Log lines come from an spdlog sink (log_sink()) or log().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/sinks/sink.h>

#include "loom/graph/graph.hpp"
#include "loom/runtime/run_report.hpp"
#include "loom/runtime/observe/ui/layout.hpp"

namespace loom::observe::ui {

struct ui_options {
  std::string host = "127.0.0.1";
  int port = 0;                  // 0: any free port (start() says which)
  std::size_t log_lines = 100;   // the last log lines kept and shown
  host_map hosts;                // a cluster run: node -> host, drawn as groups
  std::size_t max_streams = 16;  // /events streams at once (an open page holds one); beyond: 503
  std::vector<std::string> allowed_hosts;  // Host names accepted besides the address, localhost and IPs
};

// "PORT", ":PORT" or "HOST:PORT" -> host and port into `o`. Throws std::invalid_argument naming the text.
void parse_address(const std::string& text, ui_options& o);

// A decision the run waits for, as the page shows it (docs/durability.md, "People in the loop").
struct ui_decision {
  std::string node;  // the instance: `review`, `review[1]`
  std::uint32_t instance = 0;
  std::uint64_t id = 0;
  std::string shown;  // JSON text
  std::int64_t asked_unix_ms = 0;
  std::int64_t deadline_unix_ms = 0;  // 0: none
};
struct decision_hooks {
  // The decisions pending at the run's latest snapshot. Called at every progress tick: keep it cheap.
  std::function<std::vector<ui_decision>()> pending;
  // Records a decision (verdict approve, reject or edit; value: JSON text, for edit). Returns an empty
  // string when it is recorded, else one sentence saying why not (not pending, given already).
  std::function<std::string(std::uint32_t instance, std::uint64_t id, const std::string& verdict,
                            const std::string& value_json, const std::string& reason)>
      decide;
};

class ui_server {
 public:
  // Lays the graph out (Graphviz) at once: throws std::runtime_error when it cannot.
  ui_server(const graph::graph& g, ui_options options);
  ~ui_server();  // stops serving; open /events streams end
  ui_server(const ui_server&) = delete;
  ui_server& operator=(const ui_server&) = delete;

  // Binds and starts serving on a thread of its own; returns the port. Throws std::runtime_error.
  int start();
  std::string url() const;

  // A progress report of the run (counts per instance, edges). Cheap: one JSON text per call.
  void publish(const local::run_report& r);
  // The same, with the state the page shows in place of "running" (`loom serve`: the requests so far).
  void publish(const local::run_report& r, const std::string& state);
  // Lets the page show and take decisions (any time; without it /decisions is empty and /decide says
  // the run takes none). The snapshots then carry "decisions": [{node, instance, id, shown, asked_unix_ms,
  // deadline_unix_ms}].
  void set_decisions(decision_hooks hooks);
  // The run's end: the last counts and its outcome.
  void finish(const local::run_report& r);
  // A log line for the page (besides what reaches the spdlog sink), stamped with the local time.
  void log(std::string line);
  // An spdlog sink that keeps the last lines for the page; add it to a logger for as long as this lives.
  std::shared_ptr<spdlog::sinks::sink> log_sink() const;

  const std::string& svg() const;
  // The latest snapshot: {"seq", "seconds", "state" (running|ok|failed|interrupted), "error",
  //  "nodes": [{"id":"n<i>", "name", "kind", "replicas", "in", "out", "rate" (values a second: in, or out for a
  //  source, since the previous snapshot), "queued", "capacity", "fill" (queued/capacity, 0..1), "restarts",
  //  "dropped", "busy_ms"}], "edges": [{"id":"e<i>", "label", "capacity", "blocked", "blocked_ms"}],
  //  "hosts": {node: host}, "log": [lines]}
  std::string snapshot() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace loom::observe::ui
