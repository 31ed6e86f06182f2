# tests/support/npm_install.cmake: the set-up of a test that drives a real npm package (a CTest fixture):
# installs the pinned packages of SOURCE/package-lock.json into PREFIX with `npm ci`, unless that lock is
# installed there already (PREFIX/node_modules/MARKER/package.json exists and the locks are the same). Fails
# loudly when npm is missing or cannot reach the registry: a test against a reference implementation must
# not be skipped silently.
#   cmake -DSOURCE=<dir with package.json> -DPREFIX=<build>/x-npm -DNPM=<npm> -DMARKER=<package>
#         -DWHAT="<what, for messages>" -P tests/support/npm_install.cmake
foreach(arg SOURCE PREFIX MARKER WHAT)
  if(NOT DEFINED ${arg})
    message(FATAL_ERROR "npm_install.cmake: -D${arg}= is required")
  endif()
endforeach()
set(lock ${SOURCE}/package-lock.json)
if(EXISTS ${PREFIX}/node_modules/${MARKER}/package.json AND EXISTS ${PREFIX}/package-lock.json)
  file(SHA256 ${lock} want)
  file(SHA256 ${PREFIX}/package-lock.json have)
  if(want STREQUAL have)
    message(STATUS "${WHAT} already installed in ${PREFIX}")
    return()
  endif()
endif()
if(NOT NPM OR NOT EXISTS "${NPM}")
  message(FATAL_ERROR "npm was not found (NPM=${NPM}): install Node.js 20 and npm; the tests need ${WHAT} from npm")
endif()
file(MAKE_DIRECTORY ${PREFIX})
file(COPY ${SOURCE}/package.json ${lock} DESTINATION ${PREFIX})
execute_process(
  COMMAND ${NPM} ci --prefix ${PREFIX} --no-audit --no-fund
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 280)
if(NOT status EQUAL 0)
  file(REMOVE ${PREFIX}/package-lock.json)  # so that the next run tries again
  message(FATAL_ERROR "`npm ci` could not install ${WHAT} into ${PREFIX} (status ${status}); "
                      "is the npm registry reachable?\n${out}\n${err}")
endif()
message(STATUS "installed ${WHAT} into ${PREFIX}")
