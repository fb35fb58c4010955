# `cmake --install <build> [--prefix P]`: the programs, the connector SDK for sources (libhio_connector.so,
# hio_connector.h, the Python package) and the plugin ABI for processors, with a CMake package so that a
# simulation's build says `find_package(hio)` and links `hio::connector` (examples/consumer/, docs/install.md).
# Only C interfaces are exported: the C++ libraries are static and internal, so a consumer needs none of
# hio's build dependencies.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(HIO_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/hio)
set(hio_programs)
foreach(program hio hio-master hio-worker hio-plugin-host hio-repository hio-discovery hio-features-wisdom)
  if(TARGET ${program})
    list(APPEND hio_programs ${program})
  endif()
endforeach()
install(TARGETS ${hio_programs} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT programs)

if(TARGET hio_connector_c)
  set_target_properties(hio_connector_c PROPERTIES EXPORT_NAME connector
                                                   PUBLIC_HEADER ${PROJECT_SOURCE_DIR}/connector/include/hio_connector.h)
  target_include_directories(hio_connector_c INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  install(TARGETS hio_connector_c EXPORT hioTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT sdk NAMELINK_COMPONENT sdk
          PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT sdk)
  # The Python package finds the library at <prefix>/lib beside its python3/dist-packages (hio/_native.py).
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/connector/python/hio
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/python3/dist-packages COMPONENT sdk
          PATTERN __pycache__ EXCLUDE)
endif()

if(TARGET hio_processor_abi)
  install(TARGETS hio_processor_abi EXPORT hioTargets)
  install(FILES ${PROJECT_SOURCE_DIR}/worker/include/hio_processor.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          COMPONENT sdk)
endif()

if(NOT TARGET hio_connector_c AND NOT TARGET hio_processor_abi)
  return()  # a build of fewer modules (HIO_MODULES) that has neither: no package to export
endif()
install(EXPORT hioTargets NAMESPACE hio:: DESTINATION ${HIO_INSTALL_CMAKEDIR} COMPONENT sdk)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/hioConfig.cmake.in ${CMAKE_BINARY_DIR}/hioConfig.cmake
                              INSTALL_DESTINATION ${HIO_INSTALL_CMAKEDIR})
# As the soname (libhio_connector.so.<major>): the C ABI breaks only with the major version.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/hioConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/hioConfig.cmake ${CMAKE_BINARY_DIR}/hioConfigVersion.cmake
        DESTINATION ${HIO_INSTALL_CMAKEDIR} COMPONENT sdk)
