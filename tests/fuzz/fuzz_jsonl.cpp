// tests/fuzz/fuzz_jsonl.cpp: libFuzzer over the shared JSON reader as source.file reads a jsonl line
// (runtime/json_reader.hpp, then loom::from_json). Any input is a value or a json_error: never a crash, a
// stack overflow (deep nesting), a wrapped integer or another exception. What it reads writes back
// (to_json_line) as text that reads again to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loom/runtime/json.hpp"
#include "loom/runtime/json_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  loom::value v;
  try {
    v = loom::read_json_value(line, "fuzz.jsonl:1");
  } catch (const loom::json_error&) {
    return 0;
  }
  auto again = loom::read_json_value(loom::to_json_line(v), "round trip");  // throws (a finding) if refused
  if (!(again == v)) std::abort();
  return 0;
}
