# cmake -DBASE_DIR=<dir> -DFILES=<a;b;...> -DOUTPUT=<file.cpp> -P embed.cmake
# Writes a C++ file holding each file's bytes as an array and a table of them by relative path, for
# src/dashboard.cpp. Each array gets a trailing 0 (so an empty file is still a valid array) that the
# recorded size leaves out.
set(body "// Generated from the files of dashboard/ by dashboard/embed.cmake at build time. Do not edit.\n")
string(APPEND body "#include \"embedded.hpp\"\n\nnamespace hio::dashboard::detail {\nnamespace {\n")
set(table "")
set(index 0)
foreach(f ${FILES})
  file(READ "${BASE_DIR}/${f}" hex HEX)
  file(SIZE "${BASE_DIR}/${f}" size)
  string(REGEX REPLACE "([0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])"
         "\\1\n" hex "${hex}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(APPEND body "// ${f}\nconst unsigned char file_${index}[] = {\n${hex}0x00};\n")
  string(APPEND table "    {\"${f}\", file_${index}, ${size}},\n")
  math(EXPR index "${index} + 1")
endforeach()
string(APPEND body "}  // namespace\n\nconst embedded_file files[] = {\n${table}};\n")
string(APPEND body "const std::size_t file_count = ${index};\n\n}  // namespace hio::dashboard::detail\n")
# Rewrite only when the content changed, so an unchanged dashboard does not recompile.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL body)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${body}")
