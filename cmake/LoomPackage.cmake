# The installed package (docs/embedding.md): `cmake --install build --prefix P` puts
#   P/bin/loom                          the command line
#   P/lib/libloom.so.X.Y                the library (loom::loom); libloom_cuda.so beside it when CUDA was built
#   P/include/loom/...                  the public headers: embed/, and the top-level headers of graph/ and
#                                       runtime/ (what a program and a kind need); every detail/ folder and
#                                       every subfolder of runtime/ is internal and is not installed
#   P/lib/cmake/loom/                   loomConfig.cmake, its version file, the exported targets
#   P/lib/pkgconfig/loom.pc
# and CPack makes two Debian packages of the same files: `loom` (binary, libraries) and `loom-dev`.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LOOM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/loom)

install(TARGETS loom RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS loom_lib loom_headers EXPORT loomTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set_target_properties(loom_headers PROPERTIES EXPORT_NAME headers)
if(TARGET loom_cuda)
  install(TARGETS loom_cuda LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT cuda)
endif()

# Public headers: the embedding API and the top level of graph/ and runtime/ (never a subfolder).
file(GLOB _loom_graph_headers ${PROJECT_SOURCE_DIR}/graph/*.hpp)
file(GLOB _loom_runtime_headers ${PROJECT_SOURCE_DIR}/runtime/*.hpp)
install(FILES ${PROJECT_SOURCE_DIR}/embed/runtime.hpp ${PROJECT_SOURCE_DIR}/embed/running.hpp
              ${PROJECT_SOURCE_DIR}/embed/convert.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/loom/embed COMPONENT dev)
install(FILES ${_loom_graph_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/loom/graph COMPONENT dev)
install(FILES ${_loom_runtime_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/loom/runtime COMPONENT dev)
install(FILES ${LOOM_INCLUDE_ROOT}/loom/loom.hpp ${LOOM_INCLUDE_ROOT}/loom/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/loom COMPONENT dev)

install(EXPORT loomTargets NAMESPACE loom:: DESTINATION ${LOOM_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/loomConfig.cmake.in
  ${PROJECT_BINARY_DIR}/loomConfig.cmake INSTALL_DESTINATION ${LOOM_CMAKE_DIR})
# 0.x: a minor version may break the API, so 0.2 accepts 0.2.* only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/loomConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/loomConfig.cmake ${PROJECT_BINARY_DIR}/loomConfigVersion.cmake
        DESTINATION ${LOOM_CMAKE_DIR} COMPONENT dev)
configure_file(${PROJECT_SOURCE_DIR}/cmake/loom.pc.in ${PROJECT_BINARY_DIR}/loom.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/loom.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# -- CPack: `cpack -G DEB` in the build folder (scripts/dev.sh package) --------------------------------------
set(CPACK_PACKAGE_NAME loom)
set(CPACK_PACKAGE_VENDOR "loom")
set(CPACK_PACKAGE_CONTACT "loom developers <loom@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "dataflow actor framework for AI factories")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME loom)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION devel)
# dpkg-shlibdeps reads the binary and the library and names the Debian packages they need (libcaf, libzmq,
# libcapnp, ...); OpenBLAS is opened with dlopen, so it is named here.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "libopenblas0")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME loom-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "loom (= ${PROJECT_VERSION}), nlohmann-json3-dev, cmake (>= 3.25), g++ (>= 4:12)")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "loom: the command line and the library")
set(CPACK_COMPONENT_DEV_DESCRIPTION "loom: headers, CMake package and pkg-config file for programs that embed loom")
include(CPack)
