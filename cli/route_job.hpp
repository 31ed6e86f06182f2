// cli/route_job.hpp: what the two halves of `loom route` share (cli/route.cpp: the command and its HTTP
// front; cli/route_job.cpp: one chat completion's way through the replicas): the parsed options, a replica's
// address, the error bodies in OpenAI's shape, and completion_job. Internal to the `loom` program.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/route/router.hpp"

namespace loom::cli::routing {

using ojson = nlohmann::ordered_json;
using steady = std::chrono::steady_clock;

struct route_options {
  std::vector<std::string> backends;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string policy = "prefix";
  std::size_t max_in_flight = 32;
  double probe_interval = 2;
  int eject_after = 3;
  int max_attempts = 3;
  double timeout = 120;  // seconds an upstream may stay silent
  std::size_t max_body = std::size_t{1} << 20;
  std::size_t max_streams = 256;
  std::string api_key_env;       // the key clients must send
  std::string backend_key_env;   // the key sent to the replicas
  bool continue_final_message = false;  // vLLM: say that the last assistant message is to be continued
};

// The most of one replica's reply the router reads (a whole body, or one stream): the reader's limit.
constexpr std::size_t max_reply_bytes = json_limits{}.max_bytes;

// `s` on one line, cut to `n` bytes: a replica's words in an error message.
std::string excerpt(std::string s, std::size_t n = 200);

struct backend {
  std::string url;     // as given
  std::string origin;  // scheme://host:port
  std::string prefix;  // "/v1"
};

// An error body as OpenAI's API sends it, and the `type` that goes with an HTTP status.
ojson error_body(std::string_view message, std::string_view type, const std::optional<std::string>& param = {});
const char* error_type(int status);

// What a request failed with, for the client: the status and message.
struct failure {
  int status = 502;
  std::string message;
  std::string body;  // a replica's own error body (a 4xx passed on), or empty
};

// One chat completion's way through the replicas, on a thread of its own when streamed. It always streams
// from the replica; its events (rewritten: the router's id, one role delta) go into `events`.
// cli/route_job.cpp says what each member does.
class completion_job {
 public:
  completion_job(route::router& r, const std::vector<backend>& backends, const route_options& o, ojson request,
                 std::string id);

  void run();
  void cancel();
  bool wait_ready(std::chrono::milliseconds deadline);
  std::pair<std::string, bool> take();
  std::optional<failure> failed_at_once();
  std::variant<ojson, failure> whole();

 private:
  enum class result { done, failed, busy, client_error };

  void push(std::string event);
  void end_ok();
  void fail(failure f);
  bool on_event(std::string_view data, route::lease& lease, steady::time_point started);
  void merge_tool_calls(const ojson& calls);
  result attempt_on(route::lease& lease, const ojson& body);
  result whole_reply(const std::string& raw, route::lease& lease, steady::time_point started);

  route::router& router_;
  const std::vector<backend>& backends_;
  const route_options& o_;
  ojson request_;
  std::string id_;
  std::int64_t created_;
  std::string auth_;

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::string> events_;
  bool any_event_ = false, ended_ = false;
  std::optional<failure> failure_;
  std::atomic<bool> cancelled_{false};
  httplib::Client* active_ = nullptr;

  // The answer so far, across replicas.
  std::string partial_, content_;
  std::vector<ojson> tool_calls_;
  ojson finish_reason_ = "stop", usage_;
  std::string model_;
  bool sent_role_ = false, tool_calls_begun_ = false;
  // This attempt.
  bool saw_done_ = false, saw_finish_ = false, first_token_ = false;
  std::string attempt_error_;
  failure client_failure_;
};

}  // namespace loom::cli::routing
