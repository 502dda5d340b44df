#include "verdictd/service/queue_log.h"

#include <string>

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
  std::string line = "queue " + std::to_string(queue_num) + ": packets " +
                     std::to_string(c.packets.value()) + ", bytes " +
                     std::to_string(c.bytes.value());
  for (std::size_t k = 0; k < metrics::kVerdictLabels.size(); ++k) {
    if (c.verdicts[k].value() == 0) continue;
    line += ", ";
    line += metrics::kVerdictLabels[k];
    line += " " + std::to_string(c.verdicts[k].value());
  }
  line += ", gso_packets " + std::to_string(c.gso_packets.value()) + ", max_packet_length " +
          std::to_string(c.max_packet_length.value()) + ", verdict_sends " +
          std::to_string(c.verdict_sends.value()) + ", batch_messages " +
          std::to_string(c.batch_messages.value()) + ", malformed " +
          std::to_string(c.malformed.value()) + ", kernel_errors " +
          std::to_string(c.kernel_errors.value()) + ", enobufs " +
          std::to_string(c.enobufs.value()) + ", send_errors " +
          std::to_string(c.send_errors.value());
  return line;
}

}  // namespace verdictd::service
