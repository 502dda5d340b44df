# Warning and sanitizer flags shared by every target of the project.
add_library(verdictd_warnings INTERFACE)
target_compile_options(verdictd_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual -Wnull-dereference
  -Wimplicit-fallthrough)
if(VERDICTD_WERROR)
  target_compile_options(verdictd_warnings INTERFACE -Werror)
endif()

if(VERDICTD_FUZZ)
  # libFuzzer targets (fuzz/): every library is compiled with coverage for the
  # fuzzer and with ASan+UBSan, so a finding is a crash with its stack.
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "VERDICTD_FUZZ needs clang (libFuzzer): configure with CC=clang CXX=clang++")
  endif()
  if(NOT VERDICTD_SANITIZE STREQUAL "")
    message(FATAL_ERROR "VERDICTD_FUZZ brings its own sanitizers; leave VERDICTD_SANITIZE empty")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(VERDICTD_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(VERDICTD_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT VERDICTD_SANITIZE STREQUAL "")
  message(FATAL_ERROR "VERDICTD_SANITIZE must be '', 'address' or 'thread', not '${VERDICTD_SANITIZE}'")
endif()
