// How far apart data written by different threads must be kept.
//
// 128 bytes, not the 64-byte line: x86 cores' L2 spatial prefetchers fetch
// lines in aligned 128-byte pairs, so a line one thread writes drags its pair
// partner out of the other thread's cache even when no byte is shared.
// Measured on the extension host's asynchronous path: with the pending
// slot's completer line 64-byte aligned next to the worker's own line, some
// runs lost more than half their throughput (bench/extensions_bench Async/1,
// 3.3 against 7.5 M packets/s); with the pair split, none did. libstdc++'s
// std::hardware_destructive_interference_size says 64 and is fixed by ABI.
#pragma once

#include <cstddef>

namespace verdictd::base {

inline constexpr std::size_t kFalseSharingRange = 128;

}  // namespace verdictd::base
