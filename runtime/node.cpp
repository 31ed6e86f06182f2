// runtime/node.cpp: defaults of the actor contract.
#include "loom/runtime/node.hpp"

#include <stdexcept>

namespace loom {

value node::on_call(context& ctx, const value&) {
  throw std::logic_error("this kind declares no call: it cannot be used as a tool");
}

}  // namespace loom
