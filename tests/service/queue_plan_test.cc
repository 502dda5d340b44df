#include "verdictd/service/queue_plan.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "verdictd/service/build_policy.h"

namespace verdictd::service {
namespace {

TEST(PlanQueues, one_queue_per_cpu_by_default_pinned_in_order) {
  const std::vector<int> cpus{0, 1, 5};
  const auto plan = PlanQueues(config::Config{}, cpus);
  ASSERT_EQ(plan.size(), 3u);
  for (std::size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].queue.queue_num, i);
    EXPECT_EQ(plan[i].cpu, cpus[i]);
    EXPECT_TRUE(plan[i].queue.fail_open);
    EXPECT_TRUE(plan[i].queue.gso);
  }
}

TEST(PlanQueues, more_queues_than_cpus_wrap_around) {
  config::Config config;
  config.queues[0].first = 10;
  config.queues[0].count = 3;
  const std::vector<int> cpus{0, 1};
  const auto plan = PlanQueues(config, cpus);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[2].queue.queue_num, 12);
  EXPECT_EQ(plan[2].cpu, 0);
}

TEST(PlanQueues, rejects_overlaps_mismatched_cpu_lists_and_queue_overflow) {
  const std::vector<int> cpus{0, 1};
  config::Config overlap;
  overlap.queues.resize(2);
  overlap.queues[0].count = 2;
  overlap.queues[1].first = 1;
  overlap.queues[1].count = 1;
  EXPECT_THROW(PlanQueues(overlap, cpus), std::runtime_error);
  config::Config mismatch;
  mismatch.queues[0].count = 2;
  mismatch.queues[0].cpus = {0};
  EXPECT_THROW(PlanQueues(mismatch, cpus), std::runtime_error);
  config::Config overflow;
  overflow.queues[0].first = 65535;
  overflow.queues[0].count = 2;
  EXPECT_THROW(PlanQueues(overflow, cpus), std::runtime_error);
}

TEST(QueueSettingChanges, names_each_changed_setting_of_a_queue_that_stays) {
  config::Config config;
  config.queues[0].count = 1;
  const std::vector<int> cpus{0, 1};
  const QueuePlan running = PlanQueues(config, cpus).front();
  EXPECT_EQ(QueueSettingChanges(running, running), "");
  config.queues[0].copy_range = 128;
  config.queues[0].fail_open = false;
  config.queues[0].cpus = {1};
  EXPECT_EQ(QueueSettingChanges(running, PlanQueues(config, cpus).front()),
            "copy_range 65535 -> 128, fail_open 1 -> 0, cpu 0 -> 1");
}

TEST(BuildPolicy, default_verdict_without_a_factory) {
  config::Config config;
  config.verdict.default_verdict.kind = config::VerdictKind::kDrop;
  const auto policy = BuildPolicy(config, 3, 7);
  EXPECT_EQ(policy->generation, 7u);
  ASSERT_EQ(policy->deciders.size(), 3u);
  for (const auto& decider : policy->deciders) {
    EXPECT_EQ(decider->Decide(queueio::PacketView{}).kind, queueio::VerdictKind::kDrop);
  }
}

TEST(BuildPolicy, a_factory_decides_per_worker_and_may_decline) {
  config::Config config;
  std::vector<std::size_t> asked;
  const DeciderFactory factory = [&](const config::Config&, std::size_t worker)
      -> std::unique_ptr<Decider> {
    asked.push_back(worker);
    if (worker == 0) return nullptr;  // declined: default verdict
    return std::make_unique<FixedVerdictDecider>(queueio::Verdict::ToQueue(5));
  };
  const auto policy = BuildPolicy(config, 2, 1, factory);
  EXPECT_EQ(asked, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(policy->deciders[0]->Decide({}).kind, queueio::VerdictKind::kAccept);
  const queueio::Verdict v = policy->deciders[1]->Decide({});
  EXPECT_EQ(v.kind, queueio::VerdictKind::kQueue);
  EXPECT_EQ(v.target_queue, 5);
}

TEST(SummarizeCounters, names_queue_packets_and_gso_figures) {
  metrics::WorkerCounters counters;
  counters.packets.Add(3);
  counters.verdicts[0].Add(3);
  counters.gso_packets.Add(1);
  counters.max_packet_length.Max(9000);
  const std::string line = SummarizeCounters(4, counters);
  EXPECT_NE(line.find("queue 4: packets 3"), std::string::npos) << line;
  EXPECT_NE(line.find("accept 3"), std::string::npos) << line;
  EXPECT_NE(line.find("gso_packets 1, max_packet_length 9000"), std::string::npos) << line;
}

}  // namespace
}  // namespace verdictd::service
