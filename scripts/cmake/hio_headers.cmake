# hio-header-check (not part of `all`; scripts/test.sh builds it): every public header of every module
# compiles alone, as the first and only include of a translation unit (and twice, for its include guard),
# with only the include paths and dependencies its module's library gives a consumer. The C headers of
# the two C ABIs (hio_connector.h, hio_processor.h) are compiled as C11 too.
function(hio_add_header_check root modules)
  add_custom_target(hio-header-check)
  foreach(module IN LISTS modules)
    if(NOT TARGET hio_${module})
      continue()
    endif()
    file(GLOB_RECURSE headers RELATIVE ${root}/${module}/include CONFIGURE_DEPENDS
         ${root}/${module}/include/*.hpp ${root}/${module}/include/*.h)
    if(NOT headers)
      continue()
    endif()
    set(sources "")
    foreach(header IN LISTS headers)
      string(MAKE_C_IDENTIFIER "${header}" stem)
      set(content "#include <${header}>\n#include <${header}>\n")
      file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/header_check/${module}/${stem}.cpp CONTENT "${content}")
      list(APPEND sources ${CMAKE_BINARY_DIR}/header_check/${module}/${stem}.cpp)
      if(header MATCHES "\\.h$")
        file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/header_check/${module}/${stem}.c CONTENT "${content}")
        list(APPEND sources ${CMAKE_BINARY_DIR}/header_check/${module}/${stem}.c)
      endif()
    endforeach()
    add_library(hio_header_check_${module} OBJECT EXCLUDE_FROM_ALL ${sources})
    set_target_properties(hio_header_check_${module} PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON
                                                                C_EXTENSIONS OFF)
    target_link_libraries(hio_header_check_${module} PRIVATE hio_${module})
    if(module STREQUAL "worker")  # hio_processor.h: the plugin ABI is its own target
      target_link_libraries(hio_header_check_${module} PRIVATE hio::processor)
    endif()
    hio_target_flags(hio_header_check_${module})
    add_dependencies(hio-header-check hio_header_check_${module})
  endforeach()
endfunction()
