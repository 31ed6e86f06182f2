// runtime/node.cpp: defaults of the actor contract.
#include "loom/runtime/node.hpp"

#include <chrono>
#include <stdexcept>

namespace loom {

value node::on_call(context& ctx, const value&) {
  throw std::logic_error("this kind declares no call: it cannot be used as a tool");
}

std::optional<decision::verdict> verdict_of(std::string_view text) {
  for (auto v : {decision::verdict::approve, decision::verdict::reject, decision::verdict::edit})
    if (text == to_string(v)) return v;
  return std::nullopt;
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* to_string(decision::verdict v) {
  switch (v) {
    case decision::verdict::approve: return "approve";
    case decision::verdict::reject: return "reject";
    case decision::verdict::edit: return "edit";
  }
  return "?";
}

}  // namespace loom
