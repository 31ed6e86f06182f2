// runtime/observe/ui/page_files.hpp: the live view's page (runtime/observe/ui/page/), built into the binary
// by embed.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace loom::observe::ui {

struct page_file {
  std::string_view path;          // "/index.html"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view data;
};

const std::vector<page_file>& page_files();

}  // namespace loom::observe::ui
