// runtime/node.cpp: defaults of the actor contract.
#include "loom/runtime/node.hpp"

#include <stdexcept>

namespace loom {

value node::on_call(context& ctx, const value&) {
  throw std::logic_error("this kind declares no call: it cannot be used as a tool");
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
