#include "verdictd/service/queue_plan.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "verdictd/service/build_policy.h"
#include "verdictd/service/queue_log.h"

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
    EXPECT_EQ(decider->Decide(queueio::PacketView{}, 0).kind, queueio::VerdictKind::kDrop);
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
  EXPECT_EQ(policy->deciders[0]->Decide({}, 0).kind, queueio::VerdictKind::kAccept);
  const queueio::Verdict v = policy->deciders[1]->Decide({}, 0);
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

TEST(SummarizeCounters, comes_from_the_counter_table_and_names_lost_verdicts_only_when_some_were) {
  metrics::WorkerCounters counters;
  counters.packets.Add(5);
  counters.bytes.Add(500);
  counters.verdicts[1].Add(5);
  counters.batcher.sends = 2;
  counters.batcher.batch_messages = 1;
  EXPECT_EQ(SummarizeCounters(2, counters),
            "queue 2: packets 5, bytes 500, drop 5, gso_packets 0, max_packet_length 0, "
            "verdict_sends 2, batch_messages 1, malformed 0, kernel_errors 0, enobufs 0, "
            "send_errors 0");
  counters.batcher.failed_verdicts = 3;
  counters.batcher.connmarks_stripped = 1;
  const std::string line = SummarizeCounters(2, counters);
  EXPECT_NE(line.find(", send_errors 0, failed_verdicts 3, connmarks_stripped 1"), std::string::npos)
      << line;
  EXPECT_EQ(line.find("oversized_replacements"), std::string::npos) << line;
}

TEST(MapFanoutCpus, serves_each_queue_on_the_cpu_that_feeds_it) {
  // 4 CPUs, 2 queues: CPUs 0,2 feed queue 0 and 1,3 feed queue 1.
  const std::vector<int> all{0, 1, 2, 3};
  CpuMapping m = MapFanoutCpus(10, 2, all, 4);
  EXPECT_EQ(m.cpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(m.warning, "");
  // Affinity 1-3, 3 queues: CPUs 0 and 3 feed queue 0, so it runs on 3 (not
  // on 1, which feeds queue 1, where "the i-th allowed CPU" would put it).
  const std::vector<int> upper{1, 2, 3};
  m = MapFanoutCpus(0, 3, upper, 4);
  EXPECT_EQ(m.cpus, (std::vector<int>{3, 1, 2}));
  EXPECT_EQ(m.warning, "");
  // More queues than CPUs: queues no CPU feeds wrap silently.
  m = MapFanoutCpus(0, 4, std::vector<int>{0, 1}, 2);
  EXPECT_EQ(m.cpus, (std::vector<int>{0, 1, 0, 1}));
  EXPECT_EQ(m.warning, "");
}

TEST(MapFanoutCpus, warns_when_the_allowed_cpus_cannot_serve_a_queue) {
  // taskset -c 1 verdictd --queues 0:1 on 2 CPUs: CPU 0 feeds queue 0.
  const std::vector<int> one{1};
  const CpuMapping m = MapFanoutCpus(0, 2, one, 2);
  EXPECT_EQ(m.cpus, (std::vector<int>{1, 1}));
  EXPECT_EQ(m.warning,
            "--queue-cpu-fanout sends the packets of CPU c to queue 0 + c % 2, but this process "
            "may run only on CPU(s) 1: queue 0 (fed by CPU 0) runs on CPU 1, so those packets "
            "cross CPUs. Allow the feeding CPUs (taskset, CPUAffinity=, cpuset), or match the "
            "firewall rule to the CPUs, or list [[queues]] cpus explicitly");
}

TEST(PlanQueues, uses_the_fanout_mapping_and_reports_its_warning_once_per_range) {
  config::Config config;
  config.queues[0].first = 4;
  config.queues[0].count = 2;
  std::string warnings;
  const auto plan = PlanQueues(config, std::vector<int>{1}, &warnings, 2);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].cpu, 1);
  EXPECT_EQ(plan[1].cpu, 1);
  EXPECT_NE(warnings.find("queues[0] (queues 4..5): --queue-cpu-fanout sends the packets of CPU "
                          "c to queue 4 + c % 2"),
            std::string::npos)
      << warnings;
  EXPECT_NE(warnings.find("queue 4 (fed by CPU 0) runs on CPU 1"), std::string::npos) << warnings;
  EXPECT_EQ(warnings.find("queue 5 ("), std::string::npos) << warnings;
  // Explicit cpus are kept as listed, without a warning.
  config.queues[0].cpus = {1, 1};
  warnings.clear();
  const auto listed = PlanQueues(config, std::vector<int>{1}, &warnings, 2);
  EXPECT_EQ(listed[0].cpu, 1);
  EXPECT_EQ(warnings, "");
}

TEST(FallBackToMarkBypass, turns_connmark_bypass_into_mark_bypass_and_names_the_rules) {
  config::Config config;
  config::RuleSpec bypass;
  bypass.name = "long-flows";
  bypass.action.kind = config::ActionKind::kBypass;
  bypass.action.mark = {0x10, 0x10};
  config::RuleSpec marked = bypass;
  marked.name = "already-mark";
  marked.action.via = config::BypassVia::kMark;
  config::RuleSpec drop;
  drop.name = "drop";
  drop.action.kind = config::ActionKind::kDrop;
  config.rules.rules = {bypass, marked, drop};
  const std::vector<std::string> changed = FallBackToMarkBypass(config);
  EXPECT_EQ(changed, (std::vector<std::string>{"long-flows"}));
  EXPECT_EQ(config.rules.rules[0].action.via, config::BypassVia::kMark);
  EXPECT_EQ(config.rules.rules[0].action.mark, (config::MaskedValue{0x10, 0x10}));
  const std::string warning = MarkBypassFallbackWarning(config, changed);
  EXPECT_NE(warning.find("rule(s) long-flows: bypass_via = \"connmark\" needs nf_conntrack_netlink"),
            std::string::npos)
      << warning;
  EXPECT_NE(warning.find("iptables -t mangle -A POSTROUTING -m mark --mark 0x10/0x10 -j CONNMARK "
                         "--save-mark --mask 0x10"),
            std::string::npos)
      << warning;
  EXPECT_TRUE(FallBackToMarkBypass(config).empty());  // nothing left to change
}

}  // namespace
}  // namespace verdictd::service
