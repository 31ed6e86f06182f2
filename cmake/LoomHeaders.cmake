# loom_headers: where `#include "loom/..."` resolves. In the build tree, ${PROJECT_BINARY_DIR}/include/loom
# holds a link to each source folder whose headers are loom's (graph, runtime, actors, kernels, embed) and
# the generated loom/version.hpp and loom/loom.hpp; installed, the public headers are copied to
# <prefix>/include/loom/ and this root becomes <prefix>/include.
set(LOOM_INCLUDE_ROOT ${PROJECT_BINARY_DIR}/include)
file(MAKE_DIRECTORY ${LOOM_INCLUDE_ROOT}/loom)
foreach(_dir graph runtime actors kernels embed)
  if(NOT IS_SYMLINK ${LOOM_INCLUDE_ROOT}/loom/${_dir})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${_dir} ${LOOM_INCLUDE_ROOT}/loom/${_dir} SYMBOLIC)
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/embed/version.hpp.in ${LOOM_INCLUDE_ROOT}/loom/version.hpp @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/embed/loom.hpp ${LOOM_INCLUDE_ROOT}/loom/loom.hpp COPYONLY)

add_library(loom_headers INTERFACE)
target_include_directories(loom_headers INTERFACE $<BUILD_INTERFACE:${LOOM_INCLUDE_ROOT}>
                                                  $<INSTALL_INTERFACE:include>)
target_compile_features(loom_headers INTERFACE cxx_std_20)

# loom_tree: loom's own programs (cli, tests, bench, examples) also name files by their path in the
# repository ("tests/support/...", "cli/..."). Never part of what is installed.
add_library(loom_tree INTERFACE)
target_include_directories(loom_tree INTERFACE ${PROJECT_SOURCE_DIR})
