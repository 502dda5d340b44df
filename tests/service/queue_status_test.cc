#include "verdictd/service/queue_status.h"

#include <gtest/gtest.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <string>
#include <vector>

namespace verdictd::service {
namespace {

struct TwoQueues {
  metrics::WorkerCounters a, b;
  QueuePlan plan_a, plan_b;
  std::vector<QueueCountersRef> refs;

  TwoQueues() {
    plan_a.queue.queue_num = 0;
    plan_a.cpu = 0;
    plan_b.queue.queue_num = 1;
    plan_b.cpu = 1;
    plan_b.queue.copy_mode = queueio::CopyMode::kMeta;
    plan_b.queue.copy_range = 0;
    a.posture.flags = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO | NFQA_CFG_F_SECCTX;
    a.posture.max_length = 4096;
    b.posture.max_length = 100;
    a.packets.Add(10);
    a.verdicts[0].Add(7);
    a.verdicts[1].Add(3);
    a.pending = 2;
    b.stalled = true;
    a.verdict_latency.Observe(3'000, 10);  // 3 us: bucket of <= 4 us
    refs = {{0, &a, &plan_a}, {1, &b, &plan_b}};
  }
};

TEST(QueueStatusLines, one_line_per_queue_with_the_kernels_copy_mode_drops_and_backlog) {
  TwoQueues q;
  KernelTable table = std::vector<queueio::KernelQueueStats>{{0, 1, 5, 2, 1500, 7, 8, 10}};
  EXPECT_EQ(QueueStatusLines(q.refs, table),
            "queue 0 cpu=0 flags=fail-open,gso,secctx copy=packet/1500 maxlen=4096 received=10 "
            "accept=7 drop=3 repeat=0 queue=0 stop=0 drops=7/8 backlog=5 pending=2 stalled=0\n"
            "queue 1 cpu=1 flags=none copy=asked:meta/0 maxlen=100 received=0 accept=0 drop=0 "
            "repeat=0 queue=0 stop=0 drops=- backlog=- pending=0 stalled=1\n");
}

TEST(QueueSamples, round_trip_and_render_rates_and_percentiles) {
  TwoQueues q;
  KernelTable table = std::vector<queueio::KernelQueueStats>{{0, 1, 5, 2, 1500, 7, 8, 10}};
  const std::vector<QueueSample> before = ParseQueueSamples("ok\n" + QueueSampleLines(q.refs, table));
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0].packets, 10u);
  EXPECT_EQ(before[0].verdicts, 10u);
  EXPECT_EQ(before[0].drops, 15);
  EXPECT_EQ(before[0].backlog, 5);
  EXPECT_EQ(before[1].drops, -1);
  ASSERT_EQ(before[0].latency.size(), static_cast<std::size_t>(metrics::LatencyHistogram::kBuckets + 1));

  q.a.packets.Add(200);
  q.a.verdicts[0].Add(200);
  q.a.verdict_latency.Observe(100'000, 195);  // 100 us: bucket of <= 128 us
  q.a.verdict_latency.Observe(600'000, 5);    // 600 us: bucket of <= 1024 us
  (*table)[0].queue_dropped += 4;
  const std::vector<QueueSample> now = ParseQueueSamples(QueueSampleLines(q.refs, table));
  const std::string text = RenderTop(before, now, 2.0);
  EXPECT_NE(text.find("QUEUE      PKT/S  VERDICT/S"), std::string::npos) << text;
  // 200 packets in 2 s; drops 19 total, 2/s; p50 <= 128 us, p99 <= 1.024 ms.
  EXPECT_NE(text.find("     0        100        100         19        2        2        5   <=128us  <=1.02ms"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("     1          0          0          -        -        0        -         -         -"),
            std::string::npos)
      << text;
  // Without an earlier sample there are no rates.
  EXPECT_NE(RenderTop({}, now, 0).find("     0          -          -         19        -"),
            std::string::npos);
}

TEST(ParseQueueSamples, skips_lines_that_do_not_parse) {
  const auto samples = ParseQueueSamples(
      "ok\nsample queue=70000 packets=1\nsample packets=x queue=1\nnoise\n"
      "sample queue=2 packets=5 verdicts=5 drops=-1 pending=0 backlog=-1 lat=1,2\n");
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].queue, 2);
  EXPECT_EQ(samples[0].latency, (std::vector<std::uint64_t>{1, 2}));
}

TEST(LatencyQuantile, uses_the_difference_of_two_histograms) {
  const std::vector<std::uint64_t> before{5, 0, 0};
  const std::vector<std::uint64_t> now{5, 10, 1};
  EXPECT_EQ(LatencyQuantile(before, now, 0.5), metrics::LatencyHistogram::UpperBoundSeconds(1));
  EXPECT_EQ(LatencyQuantile(before, now, 0.99), metrics::LatencyHistogram::UpperBoundSeconds(2));
  EXPECT_EQ(LatencyQuantile(now, now, 0.5), std::nullopt);
}

}  // namespace
}  // namespace verdictd::service
