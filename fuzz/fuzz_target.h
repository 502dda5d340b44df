// The libFuzzer entry points every target in this folder defines. Each
// target is also linked with replay_main.cc into a plain program that runs
// the committed corpus and crash regressions through the same function, so
// the normal test suite (gcc or clang, with or without sanitizers) replays
// every input a fuzzer ever found.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
