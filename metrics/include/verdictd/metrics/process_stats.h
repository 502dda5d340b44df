// What the kernel says about this process (or one of its threads), read from
// /proc at scrape time for the usual process_* metrics and the per-worker CPU
// time. Control plane: allocates, never throws; fields it cannot read stay 0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace verdictd::metrics {

struct ProcStat {
  double cpu_seconds = 0;          // utime + stime
  double start_time_seconds = 0;   // since the Unix epoch
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  bool ok = false;                 // the stat line parsed
};

// Parses a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line. `boot_time`
// (btime of /proc/stat, seconds since the epoch), `ticks_per_second` and
// `page_size` convert the kernel's units to base units.
ProcStat ParseProcStat(std::string_view line, double boot_time, long ticks_per_second,
                       long page_size);

// Reads `path` (default /proc/self/stat) with this machine's units.
ProcStat ReadProcStat(const std::string& path = "/proc/self/stat");

// btime from /proc/stat, 0 when unknown. Cached after the first call.
double BootTimeSeconds();

// Entries of /proc/self/fd (the directory's own fd excluded); -1 when unreadable.
long OpenFileDescriptors();
// RLIMIT_NOFILE soft limit; -1 when unlimited or unknown.
long MaxFileDescriptors();

}  // namespace verdictd::metrics
