# Warning and sanitizer flags shared by every target of the project.
add_library(verdictd_warnings INTERFACE)
target_compile_options(verdictd_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual -Wnull-dereference
  -Wimplicit-fallthrough)
if(VERDICTD_WERROR)
  target_compile_options(verdictd_warnings INTERFACE -Werror)
endif()

if(VERDICTD_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(VERDICTD_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT VERDICTD_SANITIZE STREQUAL "")
  message(FATAL_ERROR "VERDICTD_SANITIZE must be '', 'address' or 'thread', not '${VERDICTD_SANITIZE}'")
endif()
