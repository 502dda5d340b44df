#include "verdictd/queueio/kernel_queue_stats.h"

#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

namespace verdictd::queueio {
namespace {

// Splits off the next whitespace-separated field and parses it as unsigned.
bool NextField(std::string_view& rest, std::uint64_t& value) {
  const auto start = rest.find_first_not_of(" \t");
  if (start == std::string_view::npos) return false;
  rest.remove_prefix(start);
  const auto end = rest.find_first_of(" \t");
  const std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  return ec == std::errc() && ptr == field.data() + field.size();
}

std::optional<KernelQueueStats> FindQueue(const std::vector<KernelQueueStats>& table,
                                          std::uint16_t queue_num) {
  for (const KernelQueueStats& row : table) {
    if (row.queue_num == queue_num) return row;
  }
  return std::nullopt;
}

}  // namespace

std::vector<KernelQueueStats> ParseKernelQueueTable(std::string_view proc_text) {
  constexpr std::uint64_t kMax32 = std::numeric_limits<std::uint32_t>::max();
  std::vector<KernelQueueStats> result;
  while (!proc_text.empty()) {
    const auto newline = proc_text.find('\n');
    std::string_view line = proc_text.substr(0, newline);
    proc_text.remove_prefix(newline == std::string_view::npos ? proc_text.size() : newline + 1);
    std::uint64_t f[8];
    bool ok = true;
    for (auto& field : f) ok = ok && NextField(line, field) && field <= kMax32;
    if (!ok || f[0] > std::numeric_limits<std::uint16_t>::max()) continue;
    KernelQueueStats s;
    s.queue_num = static_cast<std::uint16_t>(f[0]);
    s.peer_portid = static_cast<std::uint32_t>(f[1]);
    s.queue_total = static_cast<std::uint32_t>(f[2]);
    s.copy_mode = static_cast<std::uint32_t>(f[3]);
    s.copy_range = static_cast<std::uint32_t>(f[4]);
    s.queue_dropped = static_cast<std::uint32_t>(f[5]);
    s.user_dropped = static_cast<std::uint32_t>(f[6]);
    s.id_sequence = static_cast<std::uint32_t>(f[7]);
    result.push_back(s);
  }
  return result;
}

std::optional<std::vector<KernelQueueStats>> ReadKernelQueueTable(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return ParseKernelQueueTable(text.str());
}

std::optional<KernelQueueStats> ParseKernelQueueStats(std::string_view proc_text,
                                                      std::uint16_t queue_num) {
  return FindQueue(ParseKernelQueueTable(proc_text), queue_num);
}

std::optional<KernelQueueStats> ReadKernelQueueStats(std::uint16_t queue_num,
                                                     const std::string& path) {
  const auto table = ReadKernelQueueTable(path);
  if (!table) return std::nullopt;
  return FindQueue(*table, queue_num);
}

}  // namespace verdictd::queueio
