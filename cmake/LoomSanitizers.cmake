# LOOM_SANITIZE: sanitizers to build everything with, e.g. "address,undefined" (the `asan` preset sets it).
# Every target is compiled and linked with them; UBSan findings are fatal (-fno-sanitize-recover=all).
# The tests then run with the options in LOOM_SANITIZER_TEST_ENV below (see loom_sanitized_test in tests/CMakeLists.txt).
set(LOOM_SANITIZE "" CACHE STRING "Sanitizers to build with (-fsanitize=...), e.g. address,undefined; empty: none")

if(LOOM_SANITIZE)
  set(_loom_san_flags -fsanitize=${LOOM_SANITIZE} -fno-omit-frame-pointer)
  if(LOOM_SANITIZE MATCHES "undefined")
    list(APPEND _loom_san_flags -fno-sanitize-recover=all)
  endif()
  # GCC's flow analysis sees through the sanitizers' instrumentation badly: with it, GCC 12 reports
  # -Wmaybe-uninitialized inside std::variant and std::string for loom::graph::config (a false positive the
  # same code does not get without sanitizers). The ci preset keeps that warning, with -Werror.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    list(APPEND _loom_san_flags -Wno-maybe-uninitialized)
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${_loom_san_flags}>")
  add_link_options(-fsanitize=${LOOM_SANITIZE})
endif()

# Where the sanitized processes of a test run write their ASan and LSan reports: one file per finding process
# (asan.PID), so that a finding in a process the test started (a `loom worker`, `loom serve`) is seen even
# when that test does not look at the process's exit status. tests/CMakeLists.txt clears the folder before
# the suite and fails the suite when anything is in it afterwards. UBSan reports go to the process's stderr:
# GCC's libubsan is a library of its own that ignores log_path when libasan is loaded too; with
# abort_on_error the process dies of SIGABRT, which the tests that start processes check for.
set(LOOM_SANITIZER_LOG_DIR ${PROJECT_BINARY_DIR}/sanitizer-reports)
set(LOOM_SANITIZER_SUPPRESSIONS ${PROJECT_SOURCE_DIR}/tests/sanitizers)

# The environment every test (and every process it starts, which inherits it) runs with.
set(LOOM_SANITIZER_TEST_ENV)
if(LOOM_SANITIZE MATCHES "address")
  list(APPEND LOOM_SANITIZER_TEST_ENV
    "ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1:log_path=${LOOM_SANITIZER_LOG_DIR}/asan"
    "LSAN_OPTIONS=suppressions=${LOOM_SANITIZER_SUPPRESSIONS}/lsan.supp:print_suppressions=0")
endif()
if(LOOM_SANITIZE MATCHES "undefined")
  list(APPEND LOOM_SANITIZER_TEST_ENV
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1:suppressions=${LOOM_SANITIZER_SUPPRESSIONS}/ubsan.supp")
endif()
