#include "verdictd/queueio/kernel_queue_stats.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace verdictd::queueio {

std::optional<KernelQueueStats> ParseKernelQueueStats(std::string_view proc_text,
                                                      std::uint16_t queue_num) {
  std::size_t start = 0;
  while (start < proc_text.size()) {
    std::size_t end = proc_text.find('\n', start);
    if (end == std::string_view::npos) end = proc_text.size();
    const std::string line(proc_text.substr(start, end - start));
    start = end + 1;
    // Format of the kernel's seq_show(): queue_num peer_portid queue_total
    // copy_mode copy_range queue_dropped user_dropped id_sequence 1
    unsigned num, portid, total, mode, range, qdropped, udropped, idseq;
    if (std::sscanf(line.c_str(), "%u %u %u %u %u %u %u %u", &num, &portid, &total, &mode, &range,
                    &qdropped, &udropped, &idseq) != 8) {
      continue;
    }
    if (num != queue_num) continue;
    KernelQueueStats stats;
    stats.queue_num = static_cast<std::uint16_t>(num);
    stats.peer_portid = portid;
    stats.queue_total = total;
    stats.copy_mode = mode;
    stats.copy_range = range;
    stats.queue_dropped = qdropped;
    stats.user_dropped = udropped;
    stats.id_sequence = idseq;
    return stats;
  }
  return std::nullopt;
}

std::optional<KernelQueueStats> ReadKernelQueueStats(std::uint16_t queue_num, const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return ParseKernelQueueStats(text.str(), queue_num);
}

}  // namespace verdictd::queueio
