#include "verdictd/metrics/collectors.h"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "test_http.h"
#include "verdictd/metrics/queue_counters.h"

namespace verdictd::metrics {
namespace {

// The lines of `text` that start with `prefix`, in order, joined by '\n'.
std::string Lines(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) out += line + "\n";
  }
  return out;
}

class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    char path[] = "/tmp/verdictd-nfqueue-XXXXXX";
    const int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    close(fd);
    path_ = path;
    std::ofstream(path_) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Two workers on queue 3 (their counters are summed), one on queue 7.
struct Fixture {
  WorkerCounters a, b, c;
  Fixture() {
    a.packets.Add(10);
    a.bytes.Add(1000);
    a.verdicts[0].Add(8);  // accept
    a.verdicts[1].Add(2);  // drop
    a.batcher.sends = 3;
    a.batcher.batch_messages = 2;
    a.batcher.single_messages = 1;
    a.verdict_latency.Observe(1500, 4);      // le 2e-06
    a.verdict_latency.Observe(100'000, 6);   // le 0.000128
    a.kernel_delay.Observe(500, 10);
    b.packets.Add(5);
    b.bytes.Add(500);
    b.verdicts[4].Add(5);  // stop
    b.malformed.Add(1);
    b.enobufs.Add(2);
    b.verdict_latency.Observe(2'000'000'000, 5);  // +Inf
    c.packets.Add(1);
    c.verdicts[3].Add(1);  // queue
    c.up = true;
    c.cpu = 1;
  }
};

TEST(QueueCollector, exposes_exact_per_queue_values_summed_over_workers) {
  Fixture f;
  TempFile kernel(
      "    3  1234     2 2 65535     4     9      777  1\n"
      "    9  1235     0 2 65535     0     0        1  1\n");  // not ours: not exported
  QueueCollector collector(kernel.path());
  collector.AddWorker(3, f.a);
  collector.AddWorker(3, f.b);
  collector.AddWorker(7, f.c);
  const std::string text = SerializeText(collector);

  EXPECT_EQ(Lines(text, "verdictd_received_packets_total"),
            "verdictd_received_packets_total{queue=\"3\"} 15\n"
            "verdictd_received_packets_total{queue=\"7\"} 1\n");
  EXPECT_EQ(Lines(text, "verdictd_received_bytes_total"),
            "verdictd_received_bytes_total{queue=\"3\"} 1500\n"
            "verdictd_received_bytes_total{queue=\"7\"} 0\n");
  EXPECT_EQ(Lines(text, "verdictd_verdicts_total{queue=\"3\""),
            "verdictd_verdicts_total{queue=\"3\",verdict=\"accept\"} 8\n"
            "verdictd_verdicts_total{queue=\"3\",verdict=\"drop\"} 2\n"
            "verdictd_verdicts_total{queue=\"3\",verdict=\"repeat\"} 0\n"
            "verdictd_verdicts_total{queue=\"3\",verdict=\"queue\"} 0\n"
            "verdictd_verdicts_total{queue=\"3\",verdict=\"stop\"} 5\n");
  EXPECT_EQ(Lines(text, "verdictd_verdict_messages_total{queue=\"3\""),
            "verdictd_verdict_messages_total{queue=\"3\",type=\"batch\"} 2\n"
            "verdictd_verdict_messages_total{queue=\"3\",type=\"single\"} 1\n");
  EXPECT_EQ(Lines(text, "verdictd_malformed_messages_total{queue=\"3\"}"),
            "verdictd_malformed_messages_total{queue=\"3\"} 1\n");
  EXPECT_EQ(Lines(text, "verdictd_enobufs_total{queue=\"3\"}"), "verdictd_enobufs_total{queue=\"3\"} 2\n");
  EXPECT_EQ(Lines(text, "verdictd_verdict_sends_total{queue=\"3\"}"),
            "verdictd_verdict_sends_total{queue=\"3\"} 3\n");

  // Cumulative buckets from 1 us to 1 s, then +Inf; count and sum in seconds.
  const std::string latency = Lines(text, "verdictd_verdict_latency_seconds");
  EXPECT_NE(latency.find("verdictd_verdict_latency_seconds_bucket{queue=\"3\",le=\"1e-06\"} 0\n"), std::string::npos)
      << latency;
  EXPECT_NE(latency.find("verdictd_verdict_latency_seconds_bucket{queue=\"3\",le=\"2e-06\"} 4\n"), std::string::npos);
  EXPECT_NE(latency.find("verdictd_verdict_latency_seconds_bucket{queue=\"3\",le=\"6.4e-05\"} 4\n"), std::string::npos);
  EXPECT_NE(latency.find("verdictd_verdict_latency_seconds_bucket{queue=\"3\",le=\"0.000128\"} 10\n"), std::string::npos);
  EXPECT_NE(latency.find("verdictd_verdict_latency_seconds_bucket{queue=\"3\",le=\"0.524288\"} 10\n"), std::string::npos);
  EXPECT_NE(latency.find("verdictd_verdict_latency_seconds_bucket{queue=\"3\",le=\"1\"} 10\n"), std::string::npos);
  EXPECT_NE(latency.find("verdictd_verdict_latency_seconds_bucket{queue=\"3\",le=\"+Inf\"} 15\n"), std::string::npos);
  EXPECT_NE(latency.find("verdictd_verdict_latency_seconds_count{queue=\"3\"} 15\n"), std::string::npos);
  EXPECT_NE(latency.find("verdictd_verdict_latency_seconds_sum{queue=\"3\"} 10.000606\n"), std::string::npos);
  const auto line_count = [](const std::string& s) { return std::count(s.begin(), s.end(), '\n'); };
  EXPECT_EQ(line_count(Lines(text, "verdictd_verdict_latency_seconds_bucket{queue=\"3\"")), 22);
  EXPECT_EQ(line_count(Lines(text, "verdictd_verdict_latency_seconds_bucket{queue=\"7\"")), 22);
  EXPECT_NE(text.find("verdictd_kernel_delay_seconds_count{queue=\"3\"} 10\n"), std::string::npos);
  EXPECT_NE(text.find("verdictd_kernel_delay_seconds_bucket{queue=\"3\",le=\"1e-06\"} 10\n"), std::string::npos);

  EXPECT_EQ(Lines(text, "verdictd_worker_up"),
            "verdictd_worker_up{queue=\"3\"} 0\n"
            "verdictd_worker_up{queue=\"7\"} 1\n");
  EXPECT_EQ(Lines(text, "verdictd_worker_cpu{"),
            "verdictd_worker_cpu{queue=\"3\"} -1\n"
            "verdictd_worker_cpu{queue=\"7\"} 1\n");

  // Kernel side: only our queues; 7 is not bound.
  EXPECT_EQ(Lines(text, "verdictd_kernel_queue_bound"),
            "verdictd_kernel_queue_bound{queue=\"3\"} 1\n"
            "verdictd_kernel_queue_bound{queue=\"7\"} 0\n");
  EXPECT_EQ(Lines(text, "verdictd_kernel_queue_waiting_packets"),
            "verdictd_kernel_queue_waiting_packets{queue=\"3\"} 2\n");
  EXPECT_EQ(Lines(text, "verdictd_kernel_dropped_packets_total"),
            "verdictd_kernel_dropped_packets_total{queue=\"3\",reason=\"queue_full\"} 4\n"
            "verdictd_kernel_dropped_packets_total{queue=\"3\",reason=\"socket_full\"} 9\n");
  EXPECT_EQ(Lines(text, "verdictd_kernel_queue_last_packet_id"),
            "verdictd_kernel_queue_last_packet_id{queue=\"3\"} 777\n");
  EXPECT_EQ(Lines(text, "# TYPE verdictd_kernel_dropped_packets_total"),
            "# TYPE verdictd_kernel_dropped_packets_total counter\n");
  EXPECT_EQ(Lines(text, "# TYPE verdictd_verdict_latency_seconds"),
            "# TYPE verdictd_verdict_latency_seconds histogram\n");
}

TEST(QueueCollector, without_workers_exports_nothing_and_forgets_removed_ones) {
  Fixture f;
  QueueCollector collector("");
  EXPECT_EQ(SerializeText(collector), "");
  collector.AddWorker(1, f.a);
  EXPECT_NE(SerializeText(collector).find("verdictd_received_packets_total{queue=\"1\"} 10"), std::string::npos);
  collector.RemoveWorkers();
  EXPECT_EQ(SerializeText(collector), "");
}

TEST(QueueCollector, rereads_the_kernel_table_through_the_descriptor_it_opened) {
  // The real file is root-only: the collector opens it once and keeps reading
  // through that descriptor, also after the daemon dropped privileges.
  WorkerCounters counters;
  auto kernel = std::make_unique<TempFile>("    2  1  5 2 65535 0 0 10 1\n");
  QueueCollector collector(kernel->path());
  collector.AddWorker(2, counters);
  EXPECT_NE(SerializeText(collector).find("verdictd_kernel_queue_waiting_packets{queue=\"2\"} 5\n"), std::string::npos);
  std::ofstream(kernel->path(), std::ios::trunc) << "    2  1  0 2 65535 7 0 20 1\n";  // same inode
  const std::string path = kernel->path();
  kernel.reset();  // unlinked: only the open descriptor still reaches it
  const std::string text = SerializeText(collector);
  EXPECT_NE(text.find("verdictd_kernel_queue_waiting_packets{queue=\"2\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("verdictd_kernel_dropped_packets_total{queue=\"2\",reason=\"queue_full\"} 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("verdictd_kernel_queue_last_packet_id{queue=\"2\"} 20\n"), std::string::npos);
  // A collector whose file never existed exports no kernel metrics and does not fail.
  QueueCollector missing(path);
  missing.AddWorker(2, counters);
  const std::string without = SerializeText(missing);
  EXPECT_EQ(without.find("verdictd_kernel_queue"), std::string::npos);
  EXPECT_EQ(without.find("verdictd_kernel_dropped"), std::string::npos);
  EXPECT_NE(without.find("verdictd_received_packets_total"), std::string::npos);
}

TEST(QueueCollector, exports_the_posture_the_kernel_applied_and_whether_its_table_is_readable) {
  WorkerCounters counters;
  counters.posture.flags = (1u << 0) | (1u << 4);  // fail-open, secctx
  counters.posture.max_length = 2048;
  counters.posture.bound = true;
  counters.stalled = true;
  counters.stalls.Add(2);
  counters.pending = 3;
  counters.batcher.connmarks_stripped = 4;
  TempFile kernel("    5  1  0 1 0 0 0 0 1\n");  // copy mode meta
  QueueCollector collector(kernel.path());
  EXPECT_TRUE(collector.kernel_stats_available());
  collector.AddWorker(5, counters);
  const std::string text = SerializeText(collector);
  EXPECT_EQ(Lines(text, "verdictd_queue_flag{"),
            "verdictd_queue_flag{queue=\"5\",flag=\"fail-open\"} 1\n"
            "verdictd_queue_flag{queue=\"5\",flag=\"conntrack\"} 0\n"
            "verdictd_queue_flag{queue=\"5\",flag=\"gso\"} 0\n"
            "verdictd_queue_flag{queue=\"5\",flag=\"uid-gid\"} 0\n"
            "verdictd_queue_flag{queue=\"5\",flag=\"secctx\"} 1\n");
  EXPECT_EQ(Lines(text, "verdictd_queue_max_length{"), "verdictd_queue_max_length{queue=\"5\"} 2048\n");
  EXPECT_EQ(Lines(text, "verdictd_queue_info{"),
            "verdictd_queue_info{queue=\"5\",copy_mode=\"meta\"} 1\n");
  EXPECT_EQ(Lines(text, "verdictd_queue_copy_range_bytes{"),
            "verdictd_queue_copy_range_bytes{queue=\"5\"} 0\n");
  EXPECT_EQ(Lines(text, "verdictd_worker_stalled{"), "verdictd_worker_stalled{queue=\"5\"} 1\n");
  EXPECT_EQ(Lines(text, "verdictd_worker_stalls_total{"), "verdictd_worker_stalls_total{queue=\"5\"} 2\n");
  EXPECT_EQ(Lines(text, "verdictd_worker_pending_verdicts{"),
            "verdictd_worker_pending_verdicts{queue=\"5\"} 3\n");
  EXPECT_EQ(Lines(text, "verdictd_connmark_stripped_total{"),
            "verdictd_connmark_stripped_total{queue=\"5\"} 4\n");
  EXPECT_EQ(Lines(text, "verdictd_kernel_stats_available"), "verdictd_kernel_stats_available 1\n");

  // An unreadable table: said by the gauge, no kernel family, no posture read back.
  QueueCollector missing("/nonexistent/nfnetlink_queue");
  EXPECT_FALSE(missing.kernel_stats_available());
  EXPECT_EQ(missing.kernel_stats_errno(), ENOENT);
  missing.AddWorker(5, counters);
  const std::string without = SerializeText(missing);
  EXPECT_EQ(Lines(without, "verdictd_kernel_stats_available"), "verdictd_kernel_stats_available 0\n");
  EXPECT_EQ(Lines(without, "verdictd_queue_info"), "");
  EXPECT_EQ(Lines(without, "verdictd_kernel_queue"), "");
  EXPECT_EQ(Lines(without, "verdictd_queue_max_length{"), "verdictd_queue_max_length{queue=\"5\"} 2048\n");
  EXPECT_FALSE(missing.ReadKernelTable().has_value());
  ASSERT_TRUE(collector.ReadKernelTable().has_value());
  EXPECT_EQ(collector.ReadKernelTable()->size(), 1u);
}

TEST(QueueCollector, exports_the_verdicts_the_batcher_lost_or_changed) {
  WorkerCounters a, b;
  a.batcher.failed_verdicts = 5;
  b.batcher.failed_verdicts = 2;
  a.batcher.oversized_replacements = 1;
  QueueCollector collector("");
  collector.AddWorker(4, a);
  collector.AddWorker(4, b);
  const std::string text = SerializeText(collector);
  EXPECT_EQ(Lines(text, "verdictd_failed_verdicts_total{"),
            "verdictd_failed_verdicts_total{queue=\"4\"} 7\n");
  EXPECT_EQ(Lines(text, "verdictd_oversized_replacements_total{"),
            "verdictd_oversized_replacements_total{queue=\"4\"} 1\n");
  EXPECT_EQ(Lines(text, "# TYPE verdictd_failed_verdicts_total"),
            "# TYPE verdictd_failed_verdicts_total counter\n");
}

TEST(QueueCounters, every_exported_row_has_help_once_per_family_and_a_documented_name) {
  // One family per metric name: its first row carries the help, and the
  // name is in the README's list (the deploy files are checked against it).
  const std::string path = std::string(VERDICTD_SOURCE_DIR) + "/metrics/README.md";
  std::ifstream readme(path);
  ASSERT_TRUE(readme) << path;
  std::ostringstream text;
  text << readme.rdbuf();
  const std::string docs = text.str();
  for (std::size_t r = 0; r < std::size(kQueueCounters); ++r) {
    const QueueCounter& row = kQueueCounters[r];
    if (row.metric == nullptr) continue;
    bool first = true;
    for (std::size_t e = 0; e < r; ++e) {
      if (kQueueCounters[e].metric != nullptr && std::string(kQueueCounters[e].metric) == row.metric) {
        first = false;
      }
    }
    if (first) {
      EXPECT_NE(row.help, nullptr) << row.metric;
    }
    EXPECT_NE(docs.find(std::string("`") + row.metric), std::string::npos)
        << row.metric << " is not documented in metrics/README.md";
    EXPECT_EQ(row.per_verdict || row.label_name == nullptr || row.label_value != nullptr, true)
        << row.metric;
  }
}

TEST(ServiceCollector, exposes_reloads_and_build_info) {
  ServiceCounters counters;
  counters.reloads.Add(3);
  counters.reload_failures.Add(1);
  ServiceCollector collector(&counters, "9.8.7");
  const std::string text = SerializeText(collector);
  EXPECT_EQ(Lines(text, "verdictd_reload"),
            "verdictd_reloads_total 3\n"
            "verdictd_reload_failures_total 1\n");
  EXPECT_EQ(Lines(text, "verdictd_control_requests_total"), "verdictd_control_requests_total 0\n");
  EXPECT_NE(text.find(",version=\"9.8.7\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(SerializeText(ServiceCollector(nullptr)).find(std::string("version=\"") + BuildVersion()),
            std::string::npos);
}

TEST(ProcessCollector, exposes_the_usual_process_metrics) {
  const std::string text = SerializeText(ProcessCollector());
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds ",
                           "process_start_time_seconds "}) {
    EXPECT_EQ(Lines(text, name).size() > 0, true) << name << " missing in\n" << text;
  }
}

TEST(Exposition, passes_promtool_check_metrics) {
  Fixture f;
  TempFile kernel("    3  1234     2 2 65535     4     9      777  1\n");
  QueueCollector queues(kernel.path());
  queues.AddWorker(3, f.a);
  queues.AddWorker(7, f.c);
  ServiceCounters counters;
  const std::string text = SerializeText(queues) + SerializeText(ServiceCollector(&counters)) +
                           SerializeText(ProcessCollector());
  std::string output;
  const int status = testing::PromtoolCheckMetrics(text, output);
  if (status == -1) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  EXPECT_EQ(status, 0) << output << "\n--- exposition:\n" << text;
}

TEST(Exposition, promtool_rejects_a_malformed_exposition) {
  // The check above can fail: the same tool refuses a broken exposition.
  std::string output;
  const int status = testing::PromtoolCheckMetrics(
      "# TYPE verdictd_x_total counter\nverdictd_x_total{queue=\"1\" 3\n", output);
  if (status == -1) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  EXPECT_NE(status, 0) << output;
  const int lint = testing::PromtoolCheckMetrics("# TYPE verdictd_x counter\nverdictd_x 3\n", output);
  EXPECT_NE(lint, 0) << "a counter without _total should fail the lint: " << output;
}

}  // namespace
}  // namespace verdictd::metrics
