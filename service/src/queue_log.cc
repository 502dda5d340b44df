#include "verdictd/service/queue_log.h"

#include <string>

#include "verdictd/metrics/queue_counters.h"

namespace verdictd::service {

std::string DescribeQueue(const QueuePlan& plan, const queueio::BindReport& report) {
  const queueio::QueueOptions& q = plan.queue;
  std::string flags;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!flags.empty()) flags += ',';
    flags += name;
  };
  add(q.fail_open, "fail-open");
  add(q.gso, "gso");
  add(q.conntrack, "conntrack");
  add(q.uid_gid, "uid-gid");
  add(q.secctx, "secctx");
  if (flags.empty()) flags = "none";
  std::string line = "queue " + std::to_string(q.queue_num) + ": cpu " +
                     (plan.cpu < 0 ? std::string("any") : std::to_string(plan.cpu)) +
                     ", copy " + (q.copy_mode == queueio::CopyMode::kMeta ? "meta" : "packet") +
                     "/" + std::to_string(q.copy_range) + ", maxlen " +
                     std::to_string(q.max_queue_length) + ", flags " + flags + ", rcvbuf " +
                     std::to_string(report.receive_buffer_bytes) + " bytes" +
                     (report.receive_buffer_forced ? " (forced)" : "") + " of " +
                     std::to_string(q.receive_buffer_bytes) + " asked";
  if (!report.notes.empty()) line += " (" + report.notes + ")";
  return line;
}

std::string SummarizeCounters(std::uint16_t queue_num, const metrics::WorkerCounters& c) {
  std::string line = "queue " + std::to_string(queue_num) + ": ";
  bool first = true;
  for (const metrics::QueueCounter& row : metrics::kQueueCounters) {
    if (row.log_key == nullptr) continue;
    for (std::size_t k = 0; k < metrics::ValueCount(row); ++k) {
      const std::uint64_t value = row.read(c, k);
      if (value == 0 && row.log_omit_zero) continue;
      if (!first) line += ", ";
      first = false;
      line += metrics::RowKey(row, row.log_key, k);
      line += " " + std::to_string(value);
    }
  }
  return line;
}

}  // namespace verdictd::service
