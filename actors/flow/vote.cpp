// flow.vote: an arbiter over redundant branches. N inputs (a, b, ... up to e: `branches`) answer the same
// questions; the answers to one question are matched, compared, and the decision is sent on `out` when a
// quorum of them agree; every disagreement (all answers: which input said what) goes to `disagree`.
//   inputs:  a, b, c, d, e (the first `branches` of them)
//   outputs: out (the decision: the agreeing answer of the lowest input), disagree ({key, decided,
//            decision, answers: [{input, value}], missing: [inputs]} when the answers differ or no quorum
//            is reached; unconnected, a question without quorum fails the run)
//   params:  branches (integer, 2, 2..5), quorum (integer, 0: a majority, branches / 2 + 1), compare
//            (equal | numeric | jq, "equal"), answer (string, "."), tolerance (floating, 0), same (string,
//            ""), key (string, ""), timeout_ms (integer, 10000, >= 0)
// Matching: with `key` (a jq program, e.g. `.id`) answers with the same key are one question; without it
// the k-th value of each input answers the k-th question (the runtime does not tag values across
// branches, so a branch that drops or adds values shifts its answers: give a key then).
// A question is decided once every input answered it, or every input that did not has ended, or
// timeout_ms has passed since its first answer: the node's timer (context::wake_after) wakes it then, even
// while no value arrives and its inputs stay open (a branch that never answers, a source that waits). One
// wake-up is asked for at a time, for the oldest pending question. A restarted vote's pending questions
// start their timeouts again.
// Counters (Prometheus, /metrics): loom_vote_questions_total{node, outcome: unanimous | majority |
// no_quorum} and loom_vote_answers_total{node, input, agrees: yes | no | missing}: agreement rates.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/actors/flow/jq_program.hpp"
#include "loom/actors/kinds.hpp"
#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/observe/metrics.hpp"

namespace loom::actors {
namespace {

constexpr std::size_t max_branches = 5;
constexpr const char* input_names[max_branches] = {"a", "b", "c", "d", "e"};
constexpr std::size_t remembered_keys = 100000;  // decided keys kept to drop late answers (key mode)

std::size_t quorum_of(std::int64_t quorum, std::int64_t branches) {
  return static_cast<std::size_t>(quorum > 0 ? quorum : branches / 2 + 1);
}

class vote final : public node {
  using clock = std::chrono::steady_clock;

 public:
  explicit vote(const node_init& init)
      : name_(init.name),
        branches_(static_cast<std::size_t>(init.params.get_int("branches"))),
        quorum_(quorum_of(init.params.get_int("quorum"), init.params.get_int("branches"))),
        compare_(init.params.get_string("compare")),
        tolerance_(init.params.get_float("tolerance")),
        timeout_(init.params.get_int("timeout_ms")),
        closed_(branches_, false),
        seen_(branches_, 0) {
    auto jq_param = [&](const char* param) -> std::unique_ptr<jq::program> {
      const std::string& text = init.params.get_string(param);
      if (text.empty() || (std::string(param) == "answer" && text == ".")) return nullptr;
      auto p = std::make_unique<jq::program>(text, value{});
      if (!p->ok()) throw std::invalid_argument(fmt::format("flow.vote `{}`: {}: {}", name_, param, p->errors()));
      return p;
    };
    answer_ = jq_param("answer");
    key_ = jq_param("key");
    same_ = jq_param("same");
    if (compare_ == "jq" && !same_)
      throw std::invalid_argument(fmt::format("flow.vote `{}`: compare: jq needs `same`", name_));
    if (quorum_ > branches_)
      throw std::invalid_argument(fmt::format("flow.vote `{}`: quorum {} is more than its {} branches", name_,
                                              quorum_, branches_));
    auto& m = observe::metrics();
    const char* help = "Questions a flow.vote decided, by outcome: unanimous, majority, no_quorum.";
    for (const char* o : {"unanimous", "majority", "no_quorum"})
      outcomes_.push_back(&m.get_counter("loom_vote_questions_total", help, {{"node", name_}, {"outcome", o}}));
    const char* ahelp = "Answers of a flow.vote's inputs, by whether they agreed with the decision (yes, no, "
                        "missing: none came).";
    for (std::size_t i = 0; i < branches_; ++i)
      for (const char* a : {"yes", "no", "missing"})
        answers_.push_back(&m.get_counter("loom_vote_answers_total", ahelp,
                                          {{"node", name_}, {"input", input_names[i]}, {"agrees", a}}));
    if (init.restored.is_map()) restore(init.restored);
  }

  void on_start(context& ctx) override {
    if (!order_.empty()) arm(ctx, clock::now());  // restored questions
  }

  void on_message(context& ctx, std::size_t port, const value& v) override {
    if (port >= branches_)
      throw std::runtime_error(fmt::format("flow.vote `{}`: a value on input `{}`, but branches is {}", name_,
                                           input_names[port], branches_));
    value key;
    if (key_) {
      try {
        key = key_->one(v, "key");
      } catch (const jq::failure& e) {
        throw std::runtime_error(fmt::format("flow.vote `{}`: key failed on value {} (input `{}`): {}", name_,
                                             jq::excerpt(v), input_names[port], e.what()));
      }
    } else {
      key = value{seen_[port]};
    }
    ++seen_[port];
    std::string k = to_json_line(key);
    auto now = clock::now();
    if (!decided_.contains(k)) {  // else a straggler after its question was decided: dropped
      auto it = pending_.find(k);
      if (it == pending_.end()) {
        it = pending_.emplace(k, question{key, now, std::vector<std::optional<value>>(branches_)}).first;
        order_.push_back(k);
      }
      if (!it->second.answers[port]) it->second.answers[port] = v;  // a second answer of one input: the first counts
    }
    decide_ready(ctx, now, k);
    if (!armed_ && !order_.empty()) arm(ctx, now);
  }

  void on_input_closed(context& ctx, std::size_t port) override {
    if (port < branches_) closed_[port] = true;
    decide_ready(ctx, clock::now(), {});
  }

  // The oldest question's timeout is due (or was decided already): decides every question past its
  // timeout, then asks to be woken for the next. Timers are not replayed after a restart, so what they
  // decided is checkpointed here.
  void on_timer(context& ctx) override {
    armed_ = false;
    auto now = clock::now();
    std::size_t late = 0;
    while (late < order_.size() && now - pending_.at(order_[late]).first >= timeout_) ++late;
    std::vector<std::string> ready(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(late));
    for (const auto& k : ready) decide(ctx, k);
    if (!ready.empty()) checkpoint(ctx);
    if (!order_.empty()) arm(ctx, now);
  }

  void on_finish(context& ctx) override {
    while (!order_.empty()) {
      std::string k = order_.front();
      decide(ctx, k);
    }
    checkpoint(ctx);
  }

 private:
  struct question {
    value key;
    clock::time_point first;
    std::vector<std::optional<value>> answers;  // per input
  };

  // Decides every question that is ready; `fresh` (just answered) waits for the others unless complete.
  void decide_ready(context& ctx, clock::time_point now, const std::string& fresh) {
    std::vector<std::string> ready;
    for (const auto& k : order_) {
      const question& q = pending_.at(k);
      bool complete = true;
      for (std::size_t i = 0; i < branches_; ++i) complete = complete && (q.answers[i] || closed_[i]);
      bool late = k != fresh && now - q.first >= timeout_;
      if (complete || late) ready.push_back(k);
    }
    for (const auto& k : ready) decide(ctx, k);
    // A checkpoint when nothing is pending (cheap), else every 64 values: a restart replays at most 64.
    if ((!ready.empty() && pending_.empty()) || ++since_checkpoint_ >= 64) checkpoint(ctx);
  }

  // One wake-up at a time: when the oldest pending question (order_ is by first answer) times out.
  void arm(context& ctx, clock::time_point now) {
    armed_ = true;
    ctx.wake_after(pending_.at(order_.front()).first + timeout_ - now);
  }

  value compared(const value& v) {
    if (!answer_) return v;
    try {
      return answer_->one(v, "answer");
    } catch (const jq::failure& e) {
      throw std::runtime_error(fmt::format("flow.vote `{}`: answer failed on value {}: {}", name_, jq::excerpt(v),
                                           e.what()));
    }
  }

  bool agree(const value& x, const value& y) {
    if (compare_ == "equal") return x == y;
    if (compare_ == "numeric") {
      if (!x.is_number() || !y.is_number()) return x == y;
      return std::fabs(x.as_float() - y.as_float()) <= tolerance_ || (x.is_int() && y.is_int() && x.as_int() == y.as_int());
    }
    value out;
    try {
      out = same_->one(value{value_list{x, y}}, "same");
    } catch (const jq::failure& e) {
      throw std::runtime_error(fmt::format("flow.vote `{}`: same failed on [{}, {}]: {}", name_, jq::excerpt(x),
                                           jq::excerpt(y), e.what()));
    }
    if (!out.is_bool())
      throw std::runtime_error(fmt::format("flow.vote `{}`: same (`{}`) gave {}, not true or false", name_,
                                           same_->text(), jq::excerpt(out)));
    return out.as_bool();
  }

  void decide(context& ctx, const std::string& k) {
    auto node = pending_.extract(k);
    std::erase(order_, k);
    question& q = node.mapped();
    // Groups of agreeing answers, each led by its first (lowest) input.
    std::vector<value> compared_of(branches_);
    std::vector<std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < branches_; ++i) {
      if (!q.answers[i]) continue;
      compared_of[i] = compared(*q.answers[i]);
      bool joined = false;
      for (auto& g : groups)
        if (agree(compared_of[g.front()], compared_of[i])) {
          g.push_back(i);
          joined = true;
          break;
        }
      if (!joined) groups.push_back({i});
    }
    const std::vector<std::size_t>* best = nullptr;
    for (const auto& g : groups)
      if (best == nullptr || g.size() > best->size()) best = &g;
    bool decided = best != nullptr && best->size() >= quorum_;
    std::size_t answered = 0;
    for (const auto& a : q.answers) answered += a ? 1 : 0;
    bool unanimous = decided && groups.size() == 1 && answered == branches_;
    outcomes_[unanimous ? 0 : decided ? 1 : 2]->add();
    for (std::size_t i = 0; i < branches_; ++i) {
      bool yes = decided && std::find(best->begin(), best->end(), i) != best->end();
      answers_[i * 3 + (q.answers[i] ? (yes ? 0 : 1) : 2)]->add();
    }
    remember(k);
    if (decided) ctx.emit(0, *q.answers[best->front()]);
    if (groups.size() <= 1 && decided) return;  // every answer agreed (some may be missing)
    value_list said;
    value_list missing;
    for (std::size_t i = 0; i < branches_; ++i) {
      if (q.answers[i])
        said.emplace_back(value_map{{"input", input_names[i]}, {"value", *q.answers[i]}});
      else
        missing.emplace_back(input_names[i]);
    }
    value report{value_map{{"key", q.key},
                           {"decided", decided},
                           {"decision", decided ? *q.answers[best->front()] : value{}},
                           {"answers", value{std::move(said)}},
                           {"missing", value{std::move(missing)}}}};
    if (!ctx.connected(1)) {
      if (decided) return;  // counted; nobody wants the details
      throw std::runtime_error(fmt::format("flow.vote `{}`: no quorum ({} of {} must agree) for {} and output "
                                           "`disagree` is not connected",
                                           name_, quorum_, branches_, jq::excerpt(report)));
    }
    ctx.emit(1, std::move(report));
  }

  void remember(const std::string& k) {
    decided_.insert(k);
    decided_order_.push_back(k);
    if (decided_order_.size() > remembered_keys) {
      decided_.erase(decided_order_.front());
      decided_order_.pop_front();
    }
  }

  // The state a fresh instance goes on from (a restart replays only the inputs after it): how many values
  // each input gave, and the answers of the questions pending (their timeouts start again).
  void checkpoint(context& ctx) {
    since_checkpoint_ = 0;
    value_list s;
    for (auto n : seen_) s.emplace_back(n);
    value_list pending;
    for (const auto& k : order_) {
      const question& q = pending_.at(k);
      value_list answers, has;
      for (const auto& a : q.answers) {
        answers.push_back(a ? *a : value{});
        has.emplace_back(a.has_value());
      }
      pending.emplace_back(value_map{{"key", q.key}, {"answers", value{std::move(answers)}}, {"has", value{std::move(has)}}});
    }
    ctx.checkpoint(value{value_map{{"seen", value{std::move(s)}}, {"pending", value{std::move(pending)}}}});
  }

  void restore(const value& state) {
    if (const value* s = state.find("seen"); s != nullptr && s->is_list())
      for (std::size_t i = 0; i < branches_ && i < s->as_list().size(); ++i) seen_[i] = s->as_list()[i].as_int();
    const value* pending = state.find("pending");
    if (pending == nullptr || !pending->is_list()) return;
    for (const auto& p : pending->as_list()) {
      question q{*p.find("key"), clock::now(), std::vector<std::optional<value>>(branches_)};
      const auto& answers = p.find("answers")->as_list();
      const auto& has = p.find("has")->as_list();
      for (std::size_t i = 0; i < branches_ && i < answers.size(); ++i)
        if (has[i].as_bool()) q.answers[i] = answers[i];
      std::string k = to_json_line(q.key);
      order_.push_back(k);
      pending_.emplace(k, std::move(q));
    }
  }

  std::string name_;
  std::size_t branches_, quorum_;
  std::string compare_;
  double tolerance_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<jq::program> answer_, key_, same_;
  std::vector<bool> closed_;
  std::vector<std::int64_t> seen_;
  std::map<std::string, question> pending_;
  std::vector<std::string> order_;  // pending keys, by first answer
  std::set<std::string> decided_;
  std::deque<std::string> decided_order_;
  std::vector<observe::counter*> outcomes_, answers_;
  std::size_t since_checkpoint_ = 0;
  bool armed_ = false;  // a wake-up is asked for and on_timer has not run since
};

// Validation: the jq programs compile; the quorum is reachable; the first `branches` inputs are connected
// and no other is.
void check_vote(const graph::graph& g, const graph::node& n, const graph::kind_catalog&, graph::diagnostics& diags) {
  for (const char* p : {"answer", "key", "same"}) jq::check_param(n, "flow.vote", p, value{}, diags);
  auto int_param = [&](const char* p, std::int64_t def) {
    const graph::config* c = n.params.find(p);
    return c != nullptr && c->is_int() ? c->as_int() : def;
  };
  auto at = [&](const char* p) {
    const graph::config* c = n.params.find(p);
    return c != nullptr && c->where().known() ? c->where() : n.field_where("params");
  };
  std::int64_t branches = int_param("branches", 2);
  std::int64_t quorum = int_param("quorum", 0);
  if (quorum > branches)
    diags.error(at("quorum"), fmt::format("flow.vote `{}`: quorum {} is more than its {} branches: it never decides",
                                          n.name, quorum, branches));
  const graph::config* compare = n.params.find("compare");
  const graph::config* same = n.params.find("same");
  if (compare != nullptr && compare->is_string() && compare->as_string() == "jq" &&
      (same == nullptr || !same->is_string() || same->as_string().empty()))
    diags.error(at("compare"), fmt::format("flow.vote `{}`: compare: jq needs `same`, a jq program given [x, y] "
                                           "that says whether two answers agree",
                                           n.name),
                "e.g. `same: '(.[0] - .[1]) | fabs < 0.01'`");
  // Ranges are checked apart: a branches outside 2..5 is reported there, not here.
  if (branches < 2 || branches > static_cast<std::int64_t>(max_branches)) return;
  std::set<std::string> used;
  for (const auto& e : g.edges)
    if (e.to.node == n.name && !e.to.port.empty()) used.insert(e.to.port);  // unnamed: the edge check says
  for (std::int64_t i = 0; i < branches; ++i)
    if (!used.contains(input_names[i]))
      diags.error(n.where, fmt::format("flow.vote `{}`: input `{}` is not connected; with branches: {} it needs "
                                       "inputs {}",
                                       n.name, input_names[i], branches,
                                       fmt::join(std::vector<std::string>(input_names, input_names + branches), ", ")),
                  fmt::format("add an edge `- BRANCH -> {}.{}`, or lower `branches`", n.name, input_names[i]));
  for (std::size_t i = static_cast<std::size_t>(branches); i < max_branches; ++i)
    if (used.contains(input_names[i]))
      diags.error(n.where, fmt::format("flow.vote `{}`: input `{}` is connected but branches is {}", n.name,
                                       input_names[i], branches),
                  fmt::format("set `branches: {}`", i + 1));
}

}  // namespace

kind_def vote_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "flow.vote";
  s.doc = "an arbiter: matches the answers of redundant branches and sends what a quorum agrees on";
  s.example = R"yaml(graph: vote_example
nodes:
  orders: {kind: source.value, params: {value: {id: 1, price: 2.5, qty: 4}}}
  by_jq: {kind: flow.jq, params: {program: '{id, total: (.price * .qty)}'}}
  by_hand: {kind: flow.jq, params: {program: '{id, total: (.qty * .price)}'}}
  vote:
    kind: flow.vote
    params: {branches: 2, quorum: 2, key: .id, answer: .total, compare: numeric, tolerance: 0.000001}
  totals: {kind: sink.stdout, params: {format: jsonl}}
  disagreements: {kind: sink.stdout, params: {format: jsonl}}
edges:
  - orders -> [by_jq, by_hand]
  - by_jq -> vote.a
  - by_hand -> vote.b
  - vote.out -> totals
  - vote.disagree -> disagreements
)yaml";
  s.stateful = true;  // the answers held: a checkpoint, and the inputs since it replayed
  for (const char* n : input_names) s.inputs.push_back({n, "one branch's answers"});
  graph::port_spec disagree{"disagree", "{key, decided, decision, answers: [{input, value}], missing} per "
                                        "question whose answers differ"};
  disagree.unconnected = graph::if_unconnected::warn;
  disagree.hint = "a question without quorum then fails the run";
  s.outputs = {{"out", "the decision: the answer a quorum agrees on"}, disagree};
  s.params = {
      param_spec::integer("branches", "inputs in use: a, b (, c, d, e)").def(2).at_least(2).at_most(5),
      param_spec::integer("quorum", "answers that must agree; 0: a majority (branches / 2 + 1)").def(0).at_least(0)
          .at_most(5),
      param_spec::string("compare", "equal: the same value; numeric: numbers within `tolerance`; jq: `same` says")
          .def("equal")
          .one_of({"equal", "numeric", "jq"}),
      param_spec::string("answer", "jq program picking what is compared from each value, e.g. `.price`").def("."),
      param_spec::floating("tolerance", "compare: numeric: the largest difference that still agrees").def(0.0)
          .at_least(0),
      param_spec::string("same", "compare: jq: a jq program given [x, y] (two answers) giving true when they agree")
          .def(""),
      param_spec::string("key", "jq program giving the question a value answers, e.g. `.id`; empty: the k-th "
                                "value of each input answers the k-th question")
          .def(""),
      param_spec::integer("timeout_ms", "decide a question this long after its first answer, without stragglers "
                                        "(a timer: also while nothing arrives)")
          .def(10000)
          .at_least(0),
  };
  s.check = check_vote;
  return {std::move(s), [](const node_init& init) { return std::make_unique<vote>(init); }};
}

}  // namespace loom::actors
