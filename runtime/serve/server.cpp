// runtime/serve/server.cpp: the HTTP routes, admission, ready runs per slot, streaming and a clean stop.
#include "loom/runtime/serve/server.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <cstdlib>
#include <ctime>
#include <random>
#include <stdexcept>
#include <thread>

#include "loom/runtime/http/listener.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/observe/node_probes.hpp"
#include "loom/runtime/observe/trace.hpp"
#include "loom/runtime/http/decision_body.hpp"
#include "loom/runtime/serve/approvals.hpp"
#include "loom/runtime/serve/capture.hpp"
#include "loom/runtime/serve/connection_watch.hpp"
#include "loom/runtime/serve/openai.hpp"
#include "loom/runtime/serve/threads.hpp"
#include "loom/runtime/state/store.hpp"

namespace loom::serve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// Holds one unit of a counter (an unfinished request) until destroyed or released.
class counted {
 public:
  explicit counted(std::atomic<std::size_t>& n) : n_(&n) { ++n; }
  counted(counted&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  counted& operator=(counted&&) = delete;
  ~counted() { release(); }
  void release() {
    if (n_) --*std::exchange(n_, nullptr);
  }

 private:
  std::atomic<std::size_t>* n_ = nullptr;
};

// Holds a slot of the table until destroyed or released.
class slot_lease {
 public:
  slot_lease(slot_table& t, std::size_t s) : table_(&t), slot_(s) {}
  slot_lease(slot_lease&& o) noexcept : table_(std::exchange(o.table_, nullptr)), slot_(o.slot_) {}
  slot_lease& operator=(slot_lease&&) = delete;
  ~slot_lease() { release(); }
  std::size_t slot() const { return slot_; }
  void release() {
    if (table_) std::exchange(table_, nullptr)->release(slot_);
  }

 private:
  slot_table* table_;
  std::size_t slot_;
};

// loom_serve_requests_total{code} for the completions route, loom_serve_request_seconds{stream} (a whole
// answer: until it is ready; a stream: until its first value, the time to first token). Counters for the
// usual codes are looked up once; others on their request (a registry lookup per request, not per value).
struct serve_metrics {
  static constexpr int common[] = {200, 400, 401, 404, 413, 429, 500, 503};
  observe::counter* by_code[std::size(common)];
  observe::histogram& whole;
  observe::histogram& first_token;
  static constexpr const char* requests_help = "Chat-completion requests answered, by HTTP status.";
  serve_metrics()
      : whole(observe::metrics().get_histogram(
            "loom_serve_request_seconds",
            "Chat-completion latency: until the whole answer (stream=false) or its first token (stream=true).",
            {{"stream", "false"}})),
        first_token(observe::metrics().get_histogram("loom_serve_request_seconds", "", {{"stream", "true"}})) {
    for (std::size_t i = 0; i < std::size(common); ++i)
      by_code[i] = &observe::metrics().get_counter("loom_serve_requests_total", requests_help,
                                                   {{"code", std::to_string(common[i])}});
  }
  void answered(int code) {
    for (std::size_t i = 0; i < std::size(common); ++i)
      if (common[i] == code) return by_code[i]->add();
    observe::metrics().get_counter("loom_serve_requests_total", requests_help, {{"code", std::to_string(code)}}).add();
  }
  static double since(clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); }
};

// The listener's rules for `loom serve`: the key on every route but /health (the OpenAI routes and what
// extra_routes adds, /mcp), Host checked on the browser's paths, refusals as OpenAI-style errors.
http::listener_options listener_options_of(const server_options& o) {
  http::listener_options l;
  l.name = "loom serve";
  l.host = o.host;
  l.port = o.port;
  // Room to answer health checks, refusals and idle keep-alive connections while every slot is busy.
  l.threads = o.max_concurrent + 16;
  l.max_streams = o.max_streams;
  l.max_body = o.max_body;
  l.body_timeout = o.body_timeout;
  l.idle_timeout = std::chrono::seconds(1);  // an idle connection holds a thread (and a stop) at most this long
  l.api_key = o.api_key;
  l.needs_key = [](std::string_view path) { return path != "/health"; };
  l.browser_facing = [paths = o.browser_paths](std::string_view path) {
    return std::find(paths.begin(), paths.end(), path) != paths.end();
  };
  l.allowed_hosts = o.allowed_hosts;
  l.error_body = [](int status, std::string_view message) {
    auto type = status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error";
    return dump(error_body(message, type));
  };
  return l;
}

registry serving_registry(registry kinds, const std::shared_ptr<slot_table>& table) {
  kinds.add(input_kind(table));
  kinds.add(capture_kind(table));
  kinds.add(stream_capture_kind(table));
  return kinds;
}

// With the charset, httplib does not gzip the body (it compresses only the exact type application/json):
// deflate's set-up per response costs more than these small bodies gain from it.
constexpr const char* json_type = "application/json; charset=utf-8";

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), json_type);
}

void send_error(httplib::Response& res, int status, std::string_view message, std::string_view type,
                const std::optional<std::string>& param = std::nullopt) {
  send_json(res, status, error_body(message, type, param));
}

}  // namespace

struct server::impl {
  impl(caf::actor_system& sys, const registry& user_kinds, const graph::graph& g, const endpoints& choice,
       server_options opts)
      : system(sys),
        options(std::move(opts)),
        table(std::make_shared<slot_table>(options.max_concurrent)),
        kinds(serving_registry(user_kinds, table)),
        served(g, kinds, choice),
        created(static_cast<std::int64_t>(std::time(nullptr))),
        id_prefix(fmt::format("{:08x}", std::random_device{}())),
        door(listener_options_of(options)) {
    if (!options.otlp.empty()) otlp.emplace(options.otlp);
    check_decisions(g);
    // Expanded once; each request of a slot runs the slot's deployment again (fresh actors and node
    // state each time; only the expansion is reused).
    for (std::size_t s = 0; s < options.max_concurrent; ++s) {
      whole.push_back(std::make_shared<const local::deployment>(local::expand(served.instantiate(s, false), kinds)));
      streamed.push_back(std::make_shared<const local::deployment>(local::expand(served.instantiate(s, true), kinds)));
    }
    if (!options.state_dir.empty()) try {
        threads.emplace(options.state_dir, options.thread_idle, *whole.front());
      } catch (const state::error& e) {
        throw setup_error(fmt::format("--state {}: {}", options.state_dir, e.what()));
      }
  }

  caf::actor_system& system;
  server_options options;
  std::shared_ptr<slot_table> table;
  registry kinds;
  served_graph served;
  std::vector<std::shared_ptr<const local::deployment>> whole, streamed;  // per slot
  std::optional<thread_memory> threads;  // --state: the conversations' memory
  std::int64_t created;
  std::string id_prefix;
  std::atomic<std::uint64_t> next_id{0};
  http::listener door;  // the HTTP listener and its rules (runtime/http/listener.hpp)
  std::atomic<std::size_t> active{0};  // completions not yet fully answered
  std::atomic<bool> draining{false};   // stop() began: no new completions
  std::atomic<bool> force{false};      // the grace is over: interrupt the runs
  serve_metrics metrics;
  std::optional<observe::otlp_exporter> otlp;  // --otlp: each run's trace leaves from its queue
  std::uint64_t in_flight_collector = 0;  // loom_serve_in_flight: `active` at scrape time

  // Whether a run of the graph may wait for people (human.approve, agent.llm with approve_tools): its
  // requests then get a board (runtime/serve/approvals.hpp). Such a graph needs --state, as in `loom run`.
  bool asks = false;
  approval_boards boards;
  std::atomic<std::uint64_t> next_request{0};
  void check_decisions(const graph::graph& g) {
    for (const auto& n : g.nodes) {
      const auto* tools = n.kind == "agent.llm" ? n.params.find("approve_tools") : nullptr;
      if (n.kind != "human.approve" && !(tools && tools->is_list() && !tools->as_list().empty())) continue;
      asks = true;
      if (options.state_dir.empty())
        throw setup_error(fmt::format(
            "{}: node `{}` ({}) waits for decisions, which are given with POST /v1/threads/THREAD/approvals: serve "
            "it with --state DIR",
            n.where.str(), n.name, n.kind == "human.approve" ? "human.approve" : "agent.llm with approve_tools"));
    }
  }
  void approvals_get(const httplib::Request& req, httplib::Response& res, const std::string& thread);
  void approvals_post(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
  // Stops a run that has waited for people past --approval-timeout; says why on its board.
  bool waited_too_long(approval_board& board) {
    auto oldest = board.oldest();
    if (!oldest || unix_ms_now() - oldest->asked_unix_ms <= options.approval_timeout.count()) return false;
    board.set_timed_out(fmt::format("the request waited longer than {} ms for a decision (node `{}` id {}; "
                                    "--approval-timeout); its run was stopped",
                                    options.approval_timeout.count(), oldest->node, oldest->id));
    return true;
  }

  void routes();
  void refuse(httplib::Response& res, int status, std::string_view message) { door.refuse(res, status, message); }
  void chat(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
  void answer_whole(const httplib::Request& req, httplib::Response& res, const chat_request& request,
                    slot_lease lease, clock::time_point t0, const std::string& thread,
                    std::shared_ptr<approval_board> board);
  void answer_stream(const httplib::Request& req, httplib::Response& res, const chat_request& request,
                     slot_lease lease, counted guard, clock::time_point t0, const std::string& thread,
                     std::shared_ptr<approval_board> board);
  completion_head head() {
    return {fmt::format("chatcmpl-{}{:08x}", id_prefix, next_id.fetch_add(1)),
            static_cast<std::int64_t>(std::time(nullptr)), served.name()};
  }
  // Runs the slot's deployment once. Never throws. With --otlp the run is one trace, a child of the
  // request's own `traceparent` when it sent one, exported when the run ends. With --state and a thread
  // id: after the thread's earlier requests (one at a time), from its memory, which a run that succeeds
  // replaces.
  // With a board (a graph that may wait for people): the decisions pending in the run reach the board
  // through snapshots (an ask makes the coordinator take one at once; no periodic ones), decisions given
  // over HTTP reach the run through poll_decisions, and the board is listed only while the run runs.
  output_channel::end run(std::size_t slot, const std::shared_ptr<const local::deployment>& d,
                          const std::function<bool()>& interrupted, const std::string& traceparent,
                          const std::string& thread, const std::shared_ptr<approval_board>& board) {
    local::run_options ro;
    struct listed {  // off the list once the run has ended, however it ends
      approval_boards& boards;
      const std::shared_ptr<approval_board>& board;
      ~listed() {
        if (board) boards.close(board);
      }
    } listed_until_end{boards, board};
    if (board) {
      ro.snapshot_every = std::chrono::hours(24 * 365);  // only the ones an ask or a decision starts
      ro.on_snapshot = [b = board.get()](std::shared_ptr<const local::snapshot> s) { b->update(*s); };
      ro.poll_decisions = [b = board.get()] { return b->take(); };
    }
    std::optional<thread_memory::turn> turn;
    if (threads && !thread.empty()) {
      try {
        turn.emplace(threads->begin(thread));
      } catch (const std::exception& e) {
        return {false, fmt::format("thread `{}` could not be read: {}", thread, e.what())};
      }
      ro.restore = turn->restore();
      ro.on_last_checkpoint = [t = &*turn](std::uint32_t i, const value& cp) { t->collect(i, cp); };
    }
    ro.interrupted = interrupted;
    if (board)
      ro.interrupted = [&interrupted, this, b = board.get()] { return interrupted() || waited_too_long(*b); };
    if (options.on_run) ro.on_progress = [&](const local::run_report& r) { options.on_run(slot, r, false); };
    std::shared_ptr<observe::tracer> trace;
    if (!options.otlp.empty()) {
      auto parent = observe::parse_traceparent(traceparent);
      trace = parent ? std::make_shared<observe::tracer>("serve", *parent) : std::make_shared<observe::tracer>("serve");
    }
    ro.probes = observe::probes_for(trace);
    struct exporter {  // also when the run throws; the export itself is on the exporter's thread
      const std::shared_ptr<observe::tracer>& trace;
      observe::otlp_exporter* to;
      const std::string& name;
      ~exporter() {
        if (!trace) return;
        trace->finish(name, observe::span_kind::request);
        to->submit(trace);
      }
    } export_at_end{trace, otlp ? &*otlp : nullptr, served.name()};
    try {
      auto report = local::run_slice(system, d, ro, local::slice_hooks{});
      if (options.on_run) options.on_run(slot, report, true);
      if (report.result == local::run_report::outcome::failed) return {false, report.error};
      if (report.result == local::run_report::outcome::interrupted) {
        if (auto why = board ? board->timed_out() : std::nullopt) return {false, *why};
        return {false, "the run was interrupted"};
      }
      if (turn) try {
          turn->save();
        } catch (const std::exception& e) {
          return {false, fmt::format("thread `{}` could not be kept: {}", thread, e.what())};
        }
      return {};
    } catch (const std::exception& e) {
      return {false, e.what()};
    }
  }
};

void server::impl::chat(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
  // Admission: everything that can refuse a request does so before its body is read.
  auto t0 = clock::now();
  counted guard{active};  // before the draining check: stop() sees this request or it sees the stop
  if (draining) return refuse(res, 503, "the server is stopping");
  auto slot = table->acquire();
  if (!slot)
    return refuse(res, 429,
                  fmt::format("too many concurrent requests: this server runs at most {} at a time; retry later",
                              options.max_concurrent));
  slot_lease lease{*table, *slot};

  // Within --max-body and --body-timeout: a client that sends its body slowly does not keep the slot.
  auto body = door.read_body(reader);
  if (door.refuse_body(res, body)) return;

  auto parsed = parse_chat_request(body.text);
  if (auto* e = std::get_if<request_error>(&parsed))
    return send_error(res, e->status, e->message, "invalid_request_error", e->param);
  auto& request = std::get<chat_request>(parsed);
  // The thread: the header, else `user`; only with --state (without it both are ignored).
  std::string thread;
  if (threads) {
    bool from_header = req.has_header(thread_header) && !req.get_header_value(thread_header).empty();
    thread = from_header ? req.get_header_value(thread_header) : request.user;
    if (auto e = check_thread_id(thread, from_header ? thread_header : "user"))
      return send_error(res, e->status, e->message, "invalid_request_error", e->param);
  }
  // A graph that may wait for people: the request's decisions are listed under its thread, or under an id of
  // its own (`request-...`), which the response's X-Loom-Thread header says.
  std::shared_ptr<approval_board> board;
  if (asks) {
    auto key = thread.empty() ? fmt::format("request-{}{:08x}", id_prefix, next_request.fetch_add(1)) : thread;
    board = boards.open(key, whole[lease.slot()]);
    res.set_header(thread_header, key);
  }
  if (request.stream)
    return answer_stream(req, res, request, std::move(lease), std::move(guard), t0, thread, std::move(board));
  answer_whole(req, res, request, std::move(lease), t0, thread, std::move(board));
}

void server::impl::answer_whole(const httplib::Request& req, httplib::Response& res, const chat_request& request,
                                slot_lease lease, clock::time_point t0, const std::string& thread,
                                std::shared_ptr<approval_board> board) {
  auto ch = std::make_shared<output_channel>(output_channel::mode::whole, options.max_output);
  table->set(lease.slot(), {request.prompt, ch});
  // The run goes on this thread; while it runs, the coordinator polls this: the stop's grace is over, the
  // answer is too long, or the client has gone.
  connection_watch watch{req.remote_addr, req.remote_port, req.local_port};
  auto end = run(lease.slot(), whole[lease.slot()], [&] { return force || ch->overflowed() || watch.gone(); },
                 req.get_header_value("traceparent"), thread, board);
  bool gone = watch.was_gone();
  lease.release();  // a client that asks again at once finds the slot free
  metrics.whole.observe(serve_metrics::since(t0));
  if (ch->overflowed()) {
    end = {false, fmt::format("the answer is longer than this server sends ({}; --max-output); its run was stopped",
                              http::human_bytes(options.max_output))};
  } else if (gone) {
    end = {false, "the client closed the connection; its run was stopped"};
  }
  if (!end.ok) spdlog::warn("loom serve: run of graph `{}` failed: {}", served.name(), end.error);
  if (end.ok) return send_json(res, 200, completion(head(), ch->take_whole(), request.prompt_tokens));
  if (force && !ch->overflowed())
    return send_error(res, 503, "the server is stopping; the run was interrupted", "server_error");
  if (board && board->timed_out()) return send_error(res, 504, end.error, "server_error");
  send_error(res, 500, end.error, "server_error");
}

void server::impl::answer_stream(const httplib::Request& req, httplib::Response& res, const chat_request& request,
                                 slot_lease lease, counted guard, clock::time_point t0, const std::string& thread,
                                 std::shared_ptr<approval_board> board) {
  auto ch = std::make_shared<output_channel>(output_channel::mode::stream, options.stream_window);
  table->set(lease.slot(), {request.prompt, ch});
  struct stream_state {
    std::shared_ptr<output_channel> channel;
    std::atomic<bool> cancel{false};
    completion_head head;
    std::jthread thread;
    bool sent_role = false;
    std::optional<counted> guard;
    std::shared_ptr<approval_board> board;  // a graph that may wait for people
    std::optional<connection_watch> watch;  // while it waits: whether the client has gone
    std::chrono::milliseconds keepalive{15'000};
  };
  auto st = std::make_shared<stream_state>();
  st->channel = ch;
  st->head = head();
  st->guard.emplace(std::move(guard));
  st->board = board;
  st->keepalive = options.approval_keepalive;
  st->thread = std::jthread([this, st_raw = st.get(), ch, lease = std::move(lease),
                             traceparent = req.get_header_value("traceparent"), thread, board]() mutable {
    auto end = run(
        lease.slot(), streamed[lease.slot()],
        [&] {
          bool stop = st_raw->cancel.load() || force.load();
          if (stop) ch->abandon();  // a capture waiting for room returns, so the run can stop
          return stop;
        },
        traceparent, thread, board);
    if (!end.ok) spdlog::warn("loom serve: run of graph `{}` failed: {}", served.name(), end.error);
    lease.release();  // before finish(): a client that asks again at once finds the slot free
    ch->finish(std::move(end));
  });

  // Wait for the first value (or the end) so that a run that fails at once still gets its 500; a client
  // that leaves meanwhile cancels the run. A run that waits for people starts the stream at once, so the
  // client hears that it waits (comment lines) and proxies see bytes.
  connection_watch watch{req.remote_addr, req.remote_port, req.local_port};
  while (!ch->wait_ready(50ms) && !(board && board->waiting())) {
    if (watch.gone()) {
      st->cancel = true;
      ch->abandon();
      st->thread.join();
      spdlog::warn("loom serve: run of graph `{}` failed: the client closed the connection; its run was stopped",
                   served.name());
      return send_error(res, 500, "the client closed the connection", "server_error");
    }
  }
  if (ch->has_value() || ch->ended()) metrics.first_token.observe(serve_metrics::since(t0));
  if (!ch->has_value() && ch->ended() && !ch->ended()->ok) {
    st->thread.join();
    auto end = *ch->ended();
    if (force) return send_error(res, 503, "the server is stopping; the run was interrupted", "server_error");
    if (board && board->timed_out()) return send_error(res, 504, end.error, "server_error");
    return send_error(res, 500, end.error, "server_error");
  }
  if (board) st->watch.emplace(req.remote_addr, req.remote_port, req.local_port);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](std::size_t, httplib::DataSink& sink) {
        // Each call writes one event straight to the socket (a blocking write: a client that does not
        // read holds this thread, and through the channel's window the graph, until the write times out).
        auto write = [&](std::string_view s) { return sink.write(s.data(), s.size()); };
        if (!st->sent_role) {
          st->sent_role = true;
          return write(sse_event(chunk(st->head, {{"role", "assistant"}})));
        }
        auto& ch = *st->channel;
        while (!ch.wait_ready(100ms)) {
          if (!sink.is_writable()) return false;  // the client went away; the releaser cancels the run
          if (!st->board) continue;
          // Waiting for people: say so once per decision, then every approval_keepalive; a client that has
          // gone is noticed here, not only at the next write.
          if (st->watch && st->watch->gone()) return false;
          if (auto line = st->board->comment(clock::now(), st->keepalive)) return write(*line);
        }
        if (auto text = ch.next()) return write(sse_event(chunk(st->head, {{"content", std::move(*text)}})));
        auto end = *ch.ended();
        bool ok = end.ok ? write(sse_event(chunk(st->head, json::object(), "stop")))
                         : write(sse_event(error_body(end.error, "server_error")));
        ok = ok && write(sse_done);
        sink.done();
        return ok;
      },
      [st](bool success) {
        if (!success) {
          st->cancel = true;
          st->channel->abandon();
        }
        if (st->thread.joinable()) st->thread.join();
        st->guard.reset();
      });
}

void server::impl::approvals_get(const httplib::Request&, httplib::Response& res, const std::string& thread) {
  if (!thread.empty())
    if (auto e = check_thread_id(thread, "the path"))
      return send_error(res, e->status, e->message, "invalid_request_error", "thread");
  res.set_header("Cache-Control", "no-cache");
  res.set_content(approvals_json(boards.pending(thread)).dump(-1, ' ', false, json::error_handler_t::replace), json_type);
}

void server::impl::approvals_post(const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& reader) {
  // Within --max-body and --body-timeout, through the same reader as the completions.
  auto body = door.read_body(reader);
  if (door.refuse_body(res, body)) return;
  std::string thread = req.matches[1];
  if (auto e = check_thread_id(thread, "the path"))
    return send_error(res, e->status, e->message, "invalid_request_error", "thread");
  if (!asks)
    return send_error(res, 404, fmt::format("graph `{}` waits for no decisions (no human.approve, no approve_tools)",
                                            served.name()),
                      "invalid_request_error");
  auto parsed = http::parse_decision_body(body.text);
  if (auto* e = std::get_if<std::string>(&parsed)) return send_error(res, 400, *e, "invalid_request_error");
  auto answer = boards.decide(thread, std::get<http::decision_body>(parsed),
                              fmt::format("{} (loom serve)", req.remote_addr));
  if (answer.status != 200) return send_error(res, answer.status, answer.message, "invalid_request_error");
  send_json(res, 200, {{"taken", true}, {"message", answer.message}});
}

void server::impl::routes() {
  auto& http = door.server();
  // A client that sends `Expect: 100-continue` (curl does for large bodies) waits for our go before it sends
  // its body: the checks that need only the headers answer it instead, so such a body is never sent at all.
  http.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (door.refuse_at_door(req, res)) return res.status;
    if (req.method == "POST" && req.path == "/v1/chat/completions" && draining) {
      refuse(res, 503, "the server is stopping");
      return res.status;
    }
    return 100;
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", draining ? "stopping" : "ok"}, {"graph", served.name()}});
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, model_list(served.name(), created));
  });
  http.Get("/v1/models/(.+)", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != served.name())
      return send_error(res, 404, fmt::format("the model `{}` does not exist; this server serves `{}`",
                                              std::string(req.matches[1]), served.name()),
                        "invalid_request_error", "model");
    send_json(res, 200, model_list(served.name(), created)["data"][0]);
  });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
              chat(req, res, reader);
            });
  // Decisions (docs/serve.md, "Approvals"): what the running requests wait for, and a person's answer.
  http.Get("/v1/approvals", [this](const httplib::Request& req, httplib::Response& res) { approvals_get(req, res, ""); });
  http.Get("/v1/threads/(.+)/approvals", [this](const httplib::Request& req, httplib::Response& res) {
    approvals_get(req, res, req.matches[1]);
  });
  http.Post("/v1/threads/(.+)/approvals",
            [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
              approvals_post(req, res, reader);
            });
  // Errors without a body of our own (no such route, a malformed HTTP request) get an OpenAI-style one.
  door.answer_errors_in_json([](const httplib::Request& req, int status) {
    return status == 404   ? fmt::format("no route {} {}", req.method, req.path)
           : status == 413 ? std::string("the request body is larger than this server accepts")
                           : fmt::format("HTTP {} for {} {}", status, req.method, req.path);
  });
}

server::server(caf::actor_system& system, const registry& kinds, const graph::graph& g, const endpoints& choice,
               server_options options)
    : impl_(std::make_unique<impl>(system, kinds, g, choice, std::move(options))) {
  impl_->routes();
  if (impl_->options.extra_routes) impl_->options.extra_routes(impl_->door);
  // Called once each request has been answered (a stream: once its last event is written).
  impl_->door.server().set_logger([i = impl_.get()](const httplib::Request& req, const httplib::Response& res) {
    if (req.path == "/v1/chat/completions") i->metrics.answered(res.status);
  });
  impl_->in_flight_collector = observe::metrics().add_collector([i = impl_.get()](std::vector<observe::family>& out) {
    out.push_back({"loom_serve_in_flight", "Chat-completion requests being answered now.", observe::metric_type::gauge,
                   {{"loom_serve_in_flight", {}, static_cast<double>(i->active.load())}}});
  });
}

server::~server() { observe::metrics().remove_collector(impl_->in_flight_collector); }

const served_graph& server::served() const { return impl_->served; }

const thread_memory* server::threads() const { return impl_->threads ? &*impl_->threads : nullptr; }

int server::bind() { return impl_->door.bind(); }

void server::run() { impl_->door.run(); }

void server::stop() {
  auto& i = *impl_;
  i.draining = true;
  auto wait_idle = [&](std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (i.active.load() > 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  };
  wait_idle(i.options.grace);
  i.force = true;  // whatever still runs is interrupted: its sinks flush and its request gets a 503
  wait_idle(500ms);
  i.door.stop();
}

}  // namespace loom::serve
