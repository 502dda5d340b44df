#include "verdictd/metrics/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

namespace verdictd::metrics {
namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

ProcStat ParseProcStat(std::string_view line, double boot_time, long ticks_per_second,
                       long page_size) {
  ProcStat stat;
  // The command name (field 2) is in parentheses and may hold spaces or ')':
  // the fields proper start after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return stat;
  std::string_view rest = line.substr(close + 1);
  // Fields from 3 (state) on; we need 14 utime, 15 stime, 22 starttime,
  // 23 vsize, 24 rss (proc(5) numbering).
  std::vector<std::string_view> fields;
  while (!rest.empty() && fields.size() < 22) {
    const auto start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto end = rest.find(' ');
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  if (fields.size() < 22) return stat;
  auto field = [&](int number) {
    const std::string_view f = fields[static_cast<std::size_t>(number - 3)];
    std::uint64_t v = 0;
    std::from_chars(f.data(), f.data() + f.size(), v);
    return v;
  };
  const double ticks = static_cast<double>(ticks_per_second);
  stat.cpu_seconds = static_cast<double>(field(14) + field(15)) / ticks;
  stat.start_time_seconds = boot_time + static_cast<double>(field(22)) / ticks;
  stat.virtual_bytes = field(23);
  stat.resident_bytes = field(24) * static_cast<std::uint64_t>(page_size);
  stat.ok = true;
  return stat;
}

ProcStat ReadProcStat(const std::string& path) {
  static const long ticks = sysconf(_SC_CLK_TCK);
  static const long page = sysconf(_SC_PAGESIZE);
  return ParseProcStat(ReadWhole(path), BootTimeSeconds(), ticks, page);
}

double BootTimeSeconds() {
  static const double boot_time = [] {
    std::istringstream in(ReadWhole("/proc/stat"));
    std::string key;
    while (in >> key) {
      if (key == "btime") {
        double value = 0;
        in >> value;
        return value;
      }
      in.ignore(1 << 20, '\n');
    }
    return 0.0;
  }();
  return boot_time;
}

long OpenFileDescriptors() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  long count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the directory stream's own descriptor
}

long MaxFileDescriptors() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return -1;
  return static_cast<long>(limit.rlim_cur);
}

}  // namespace verdictd::metrics
