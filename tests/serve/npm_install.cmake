# tests/serve/npm_install.cmake: the set-up of the serve_openai_client test (a CTest fixture): installs the
# pinned `openai` npm package (tests/serve/package-lock.json) into PREFIX with `npm ci`, unless that lock is
# installed there already. Fails loudly when npm is missing or cannot reach the registry: the test of loom
# serve against the real client must not be skipped silently.
#   cmake -DSOURCE=<tests/serve> -DPREFIX=<build>/serve-npm -DNPM=<npm> -P npm_install.cmake
set(lock ${SOURCE}/package-lock.json)
if(EXISTS ${PREFIX}/node_modules/openai/package.json AND EXISTS ${PREFIX}/package-lock.json)
  file(SHA256 ${lock} want)
  file(SHA256 ${PREFIX}/package-lock.json have)
  if(want STREQUAL have)
    message(STATUS "openai npm package already installed in ${PREFIX}")
    return()
  endif()
endif()
if(NOT NPM OR NOT EXISTS "${NPM}")
  message(FATAL_ERROR "npm was not found (NPM=${NPM}): install Node.js 20 and npm; the serve_openai_client test "
                      "needs the `openai` npm package")
endif()
file(MAKE_DIRECTORY ${PREFIX})
file(COPY ${SOURCE}/package.json ${lock} DESTINATION ${PREFIX})
execute_process(
  COMMAND ${NPM} ci --prefix ${PREFIX} --no-audit --no-fund
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 280)
if(NOT status EQUAL 0)
  file(REMOVE ${PREFIX}/package-lock.json)  # so that the next run tries again
  message(FATAL_ERROR "`npm ci` could not install the openai npm package into ${PREFIX} (status ${status}); "
                      "is the npm registry reachable?\n${out}\n${err}")
endif()
message(STATUS "installed the openai npm package into ${PREFIX}")
