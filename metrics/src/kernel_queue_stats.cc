#include "verdictd/metrics/kernel_queue_stats.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace verdictd::metrics {
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

}  // namespace

std::vector<KernelQueueStats> ParseKernelQueueStats(std::string_view text) {
  std::vector<KernelQueueStats> result;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    std::uint64_t f[8];
    bool ok = true;
    for (auto& field : f) ok = ok && NextField(line, field);
    if (!ok || f[0] > 0xffff) continue;
    KernelQueueStats s;
    s.queue_num = static_cast<std::uint16_t>(f[0]);
    s.peer_portid = static_cast<std::uint32_t>(f[1]);
    s.waiting = static_cast<std::uint32_t>(f[2]);
    s.copy_mode = static_cast<std::uint32_t>(f[3]);
    s.copy_range = static_cast<std::uint32_t>(f[4]);
    s.queue_dropped = static_cast<std::uint32_t>(f[5]);
    s.user_dropped = static_cast<std::uint32_t>(f[6]);
    s.last_id = static_cast<std::uint32_t>(f[7]);
    result.push_back(s);
  }
  return result;
}

std::optional<std::vector<KernelQueueStats>> ReadKernelQueueStats(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return ParseKernelQueueStats(text.str());
}

}  // namespace verdictd::metrics
