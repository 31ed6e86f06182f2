# tests/sanitizers/reports.cmake: the two ends of a sanitized test run (see tests/CMakeLists.txt).
#   cmake -DDIR=<build>/sanitizer-reports -DMODE=clear -P reports.cmake   before the tests: empty DIR
#   cmake -DDIR=<build>/sanitizer-reports -DMODE=check -P reports.cmake   after them: fail if DIR has reports
if(MODE STREQUAL "clear")
  file(REMOVE_RECURSE ${DIR})
  file(MAKE_DIRECTORY ${DIR})
  return()
endif()
file(GLOB reports ${DIR}/*)
if(reports)
  list(LENGTH reports n)
  set(text "")
  foreach(r IN LISTS reports)
    file(READ ${r} body)
    string(APPEND text "\n==== ${r}\n${body}")
  endforeach()
  message(FATAL_ERROR "${n} sanitizer report(s) written by the processes of this test run:${text}")
endif()
message(STATUS "no sanitizer reports in ${DIR}")
