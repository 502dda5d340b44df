// How far apart data written by different threads must be kept.
//
// 128 bytes, not the 64-byte line: x86 cores' L2 spatial prefetchers fetch
// lines in aligned 128-byte pairs, so a line one thread writes drags its pair
// partner out of the other thread's cache even when no byte is shared.
// The extension host's pending slots are the case in point: the completing
// thread writes a slot's first line, the worker the rest. libstdc++'s
// std::hardware_destructive_interference_size says 64 and is fixed by ABI.
#pragma once

#include <cstddef>

namespace verdictd::base {

inline constexpr std::size_t kFalseSharingRange = 128;

}  // namespace verdictd::base
