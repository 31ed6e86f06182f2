# tests/mcp/npm_install.cmake: the set-up of the MCP tests (a CTest fixture): installs the pinned reference
# implementations (tests/mcp/package-lock.json: @modelcontextprotocol/sdk, server-everything, server-filesystem)
# into PREFIX with `npm ci`, unless that lock is installed there already. Fails loudly when npm is missing or
# cannot reach the registry: the tests against the reference implementations must not be skipped silently.
#   cmake -DSOURCE=<tests/mcp> -DPREFIX=<build>/mcp-npm -DNPM=<npm> -P npm_install.cmake
set(lock ${SOURCE}/package-lock.json)
if(EXISTS ${PREFIX}/node_modules/@modelcontextprotocol/sdk/package.json AND EXISTS ${PREFIX}/package-lock.json)
  file(SHA256 ${lock} want)
  file(SHA256 ${PREFIX}/package-lock.json have)
  if(want STREQUAL have)
    message(STATUS "MCP npm packages already installed in ${PREFIX}")
    return()
  endif()
endif()
if(NOT NPM OR NOT EXISTS "${NPM}")
  message(FATAL_ERROR "npm was not found (NPM=${NPM}): install Node.js 20 and npm; the MCP tests need the "
                      "reference implementations from npm")
endif()
file(MAKE_DIRECTORY ${PREFIX})
file(COPY ${SOURCE}/package.json ${lock} DESTINATION ${PREFIX})
execute_process(
  COMMAND ${NPM} ci --prefix ${PREFIX} --no-audit --no-fund
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 280)
if(NOT status EQUAL 0)
  file(REMOVE ${PREFIX}/package-lock.json)  # so that the next run tries again
  message(FATAL_ERROR "`npm ci` could not install the MCP npm packages into ${PREFIX} (status ${status}); "
                      "is the npm registry reachable?\n${out}\n${err}")
endif()
message(STATUS "installed the MCP npm packages into ${PREFIX}")
