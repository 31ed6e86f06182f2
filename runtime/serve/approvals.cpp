// runtime/serve/approvals.cpp: the boards of requests that wait for people (runtime/serve/approvals.hpp).
#include "loom/runtime/serve/approvals.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "loom/runtime/json.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/node.hpp"

namespace loom::serve {
namespace {

// "review" names every replica's decisions, "review[1]" one replica's.
bool names(const std::string& instance_name, const std::string& node) {
  if (instance_name == node) return true;
  auto bracket = instance_name.find('[');
  return bracket != std::string::npos && bracket == node.size() &&
         instance_name.compare(0, bracket, node) == 0;
}

bool named(const pending_approval& p, const http::decision_body& d) {
  return p.id == d.id && (d.instance ? p.instance == *d.instance : names(p.node, d.node));
}

std::string label(const http::decision_body& d) {
  return d.node.empty() ? fmt::format("instance {}", *d.instance) : fmt::format("`{}`", d.node);
}

// `review` (ids 0, 1), `other` (id 3)
std::string by_node(const std::vector<pending_approval>& list) {
  std::map<std::string, std::vector<std::uint64_t>> ids;
  for (const auto& p : list) ids[p.node].push_back(p.id);
  std::string out;
  for (const auto& [node, v] : ids)
    out += fmt::format("{}`{}` (id{} {})", out.empty() ? "" : ", ", node, v.size() > 1 ? "s" : "",
                       fmt::join(v, ", "));
  return out;
}

}  // namespace

approval_board::approval_board(std::string thread, std::shared_ptr<const local::deployment> plan)
    : thread_(std::move(thread)), plan_(std::move(plan)) {}

void approval_board::update(const local::snapshot& s) {
  std::vector<pending_approval> now;
  for (const auto& part : s.parts) {
    if (!part) continue;
    for (const auto& d : part->pending)
      now.push_back({thread_, local::instance_name(*plan_, part->instance), part->instance, d.id, d.shown,
                     d.asked_unix_ms, d.deadline_unix_ms});
  }
  std::stable_sort(now.begin(), now.end(),
                   [](const auto& a, const auto& b) { return a.asked_unix_ms < b.asked_unix_ms; });
  std::lock_guard lock{m_};
  pending_ = std::move(now);
}

std::vector<local::routed_decision> approval_board::take() {
  std::lock_guard lock{m_};
  return std::exchange(queued_, {});
}

void approval_board::clear() {
  std::lock_guard lock{m_};
  pending_.clear();
  queued_.clear();
}

std::vector<pending_approval> approval_board::pending() const {
  std::lock_guard lock{m_};
  std::vector<pending_approval> out;
  for (const auto& p : pending_)
    if (std::none_of(given_.begin(), given_.end(),
                     [&](const auto& g) { return g.instance == p.instance && g.id == p.id; }))
      out.push_back(p);
  return out;
}

bool approval_board::waiting() const {
  return !pending().empty();
}

std::optional<pending_approval> approval_board::oldest() const {
  auto list = pending();
  if (list.empty()) return std::nullopt;
  return list.front();
}

approval_answer approval_board::decide(const http::decision_body& d, const std::string& by, bool& taken) {
  taken = false;
  std::lock_guard lock{m_};
  const pending_approval* match = nullptr;
  for (const auto& p : pending_) {
    if (!named(p, d)) continue;
    if (match)
      return {409, fmt::format("decision {} is pending at both `{}` and `{}`: name the replica as NODE[i]",
                               d.id, match->node, p.node)};
    match = &p;
  }
  if (!match) {
    // Given here, and taken by the run since? Ids are not asked again within a run.
    for (const auto& g : given_)
      if (g.id == d.id && (d.instance ? g.instance == *d.instance : names(g.node, d.node)))
        return {409, http::already_given(d.id, g.node, fmt::format("thread `{}`", thread_), g.verdict, g.by)};
    return {409, ""};  // the caller says what is pending
  }
  for (const auto& g : given_)
    if (g.instance == match->instance && g.id == match->id)
      return {409,
              http::already_given(d.id, match->node, fmt::format("thread `{}`", thread_), g.verdict, g.by)};
  local::routed_decision r;
  r.instance = match->instance;
  r.id = match->id;
  r.d.what = *verdict_of(d.verdict);
  r.d.reason = d.reason;
  r.d.by = by;
  if (d.value_json) {
    try {
      r.d.edited = read_json_value(*d.value_json, "value");
    } catch (const std::exception& e) {
      return {400, e.what()};
    }
  }
  given_.push_back({match->instance, match->id, match->node, d.verdict, by});
  queued_.push_back(std::move(r));
  taken = true;
  return {200, fmt::format("{} decision {} of `{}`",
                           d.verdict == "reject" ? "rejected"
                           : d.verdict == "edit" ? "edited"
                                                 : "approved",
                           match->id, match->node)};
}

std::optional<std::string> approval_board::comment(std::chrono::steady_clock::time_point now,
                                                   std::chrono::milliseconds every) {
  auto list = pending();
  if (list.empty()) return std::nullopt;
  std::lock_guard lock{m_};
  const pending_approval* say = nullptr;
  for (const auto& p : list)
    if (announced_.insert({p.instance, p.id}).second) {
      say = &p;
      break;
    }
  if (!say && now - last_comment_ >= every) say = &list.front();
  if (!say) return std::nullopt;
  last_comment_ = now;
  return fmt::format(": waiting for approval: node {} id {}\n\n", say->node, say->id);
}

std::optional<std::string> approval_board::timed_out() const {
  std::lock_guard lock{m_};
  return timed_out_;
}

void approval_board::set_timed_out(std::string why) {
  std::lock_guard lock{m_};
  timed_out_ = std::move(why);
}

std::shared_ptr<approval_board> approval_boards::open(const std::string& thread,
                                                      std::shared_ptr<const local::deployment> plan) {
  auto board = std::make_shared<approval_board>(thread, std::move(plan));
  std::lock_guard lock{m_};
  boards_.emplace(thread, board);
  return board;
}

void approval_boards::close(const std::shared_ptr<approval_board>& board) {
  std::vector<approval_board::given> given;
  {
    std::lock_guard lock{board->m_};
    given = board->given_;
  }
  board->clear();
  std::lock_guard lock{m_};
  auto [from, to] = boards_.equal_range(board->thread());
  for (auto it = from; it != to; ++it)
    if (it->second == board) {
      boards_.erase(it);
      break;
    }
  for (auto& g : given) {
    recent_.push_back({board->thread(), std::move(g.node), g.id, std::move(g.verdict), std::move(g.by)});
    if (recent_.size() > remembered) recent_.pop_front();
  }
}

std::vector<pending_approval> approval_boards::pending(const std::string& thread) const {
  std::vector<std::shared_ptr<approval_board>> boards;
  {
    std::lock_guard lock{m_};
    for (const auto& [t, b] : boards_)
      if (thread.empty() || t == thread) boards.push_back(b);
  }
  std::vector<pending_approval> out;
  for (const auto& b : boards) {
    auto list = b->pending();
    out.insert(out.end(), std::make_move_iterator(list.begin()), std::make_move_iterator(list.end()));
  }
  return out;
}

approval_answer approval_boards::decide(const std::string& thread, const http::decision_body& d,
                                        const std::string& by) {
  std::vector<std::shared_ptr<approval_board>> boards;
  {
    std::lock_guard lock{m_};
    auto [from, to] = boards_.equal_range(thread);
    for (auto it = from; it != to; ++it) boards.push_back(it->second);
  }
  approval_answer refused{409, ""};
  for (const auto& b : boards) {
    bool taken = false;
    auto a = b->decide(d, by, taken);
    if (taken || a.status == 400) return a;
    if (!a.message.empty()) refused = a;
  }
  if (!refused.message.empty()) return refused;
  // Not pending in a running request: given already, to a request that has ended since?
  {
    std::lock_guard lock{m_};
    for (auto it = recent_.rbegin(); it != recent_.rend(); ++it)
      if (it->thread == thread && it->id == d.id && !d.node.empty() && names(it->node, d.node))
        return {409,
                http::already_given(d.id, it->node, fmt::format("thread `{}`", thread), it->verdict, it->by)};
  }
  auto list = pending(thread);
  if (list.empty())
    return {404, fmt::format("thread `{}` has no decision pending (no request of it waits for one)", thread)};
  return {409, fmt::format("{} has no pending decision {} in thread `{}` (pending: {})", label(d), d.id,
                           thread, by_node(list))};
}

nlohmann::ordered_json approvals_json(const std::vector<pending_approval>& list) {
  auto data = nlohmann::ordered_json::array();
  for (const auto& p : list) {
    nlohmann::ordered_json j{{"thread", p.thread},        {"node", p.node},
                             {"instance", p.instance},    {"id", p.id},
                             {"shown", to_json(p.shown)}, {"asked_unix_ms", p.asked_unix_ms}};
    if (p.deadline_unix_ms > 0) j["deadline_unix_ms"] = p.deadline_unix_ms;
    data.push_back(std::move(j));
  }
  return {{"object", "list"}, {"data", std::move(data)}};
}

}  // namespace loom::serve
