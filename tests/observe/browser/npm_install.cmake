# tests/observe/browser/npm_install.cmake: the set-up of the ui_browser test (a CTest fixture): installs the
# pinned puppeteer-core (package-lock.json here) into PREFIX with `npm ci`, unless that lock is installed
# there already. Fails loudly when npm is missing or the registry cannot be reached: the browser test must not
# be skipped silently. puppeteer-core downloads no browser; the test drives Debian's chromium.
#   cmake -DSOURCE=<tests/observe/browser> -DPREFIX=<build>/ui-npm -DNPM=<npm> -P npm_install.cmake
set(lock ${SOURCE}/package-lock.json)
if(EXISTS ${PREFIX}/node_modules/puppeteer-core/package.json AND EXISTS ${PREFIX}/package-lock.json)
  file(SHA256 ${lock} want)
  file(SHA256 ${PREFIX}/package-lock.json have)
  if(want STREQUAL have)
    message(STATUS "puppeteer-core already installed in ${PREFIX}")
    return()
  endif()
endif()
if(NOT NPM OR NOT EXISTS "${NPM}")
  message(FATAL_ERROR "npm was not found (NPM=${NPM}): install Node.js and npm; the ui_browser test needs puppeteer-core")
endif()
file(MAKE_DIRECTORY ${PREFIX})
file(COPY ${SOURCE}/package.json ${lock} DESTINATION ${PREFIX})
execute_process(
  COMMAND ${NPM} ci --prefix ${PREFIX} --no-audit --no-fund
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 280)
if(NOT status EQUAL 0)
  file(REMOVE ${PREFIX}/package-lock.json)  # so that the next run tries again
  message(FATAL_ERROR "`npm ci` could not install puppeteer-core into ${PREFIX} (status ${status}); is the npm "
                      "registry reachable?\n${out}\n${err}")
endif()
message(STATUS "installed puppeteer-core into ${PREFIX}")
