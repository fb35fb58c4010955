# Compiler flags for hio's own targets (never for third-party code).
function(hio_target_flags target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
  if(HIO_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # libstdc++ 12's std::stable_sort calls std::get_temporary_buffer, which clang >= 19 flags as deprecated
    # inside the standard library's own headers.
    target_compile_options(${target} PRIVATE -Wno-deprecated-declarations)
  endif()
  if(HIO_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++ 12 under ASan reports coroutine frames' sized delete as mismatched (a false positive).
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
  endif()
endfunction()

if(HIO_TSAN)
  add_compile_options(-fsanitize=thread)
  add_link_options(-fsanitize=thread)
endif()
if(HIO_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

find_program(HIO_CCACHE ccache)
if(HIO_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${HIO_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${HIO_CCACHE})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${HIO_CCACHE})
endif()

# hio_library(<name> SOURCES ... DEPS ...): the library of one top-level folder, as hio::<name>.
function(hio_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(hio_${name} ${ARG_SOURCES})
  add_library(hio::${name} ALIAS hio_${name})
  target_include_directories(hio_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                         PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(hio_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  hio_target_flags(hio_${name})
endfunction()

function(hio_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  hio_target_flags(${name})
endfunction()
