#include "verdictd/config/changes.h"

#include <gtest/gtest.h>

#include "verdictd/config/limits.h"

namespace verdictd::config {
namespace {

using Keys = std::vector<std::string>;

TEST(Changes, live_keys_need_no_restart) {
  Config running;
  Config next = running;
  next.verdict.default_verdict.kind = VerdictKind::kDrop;
  next.verdict.unparseable_verdict.kind = VerdictKind::kDrop;
  next.log.level = LogLevel::kDebug;
  next.rules.include_files = {"x.rules"};
  EXPECT_EQ(RestartOnlyChanges(running, next), Keys{});
  EXPECT_EQ(ChangedKeys(running, next),
            (Keys{"verdict.default", "verdict.unparseable", "log.level", "rules"}));
}

TEST(Changes, sockets_and_privileges_need_a_restart) {
  Config running;
  Config next = running;
  next.queues[0].count = 2;
  next.queues[0].receive_buffer_bytes = 4096;
  next.metrics.listen = "0.0.0.0:1";
  next.control.socket = "/tmp/x";
  next.process.user = "nobody";
  EXPECT_EQ(RestartOnlyChanges(running, next),
            (Keys{"queues[0].count", "queues[0].receive_buffer_bytes", "metrics.listen",
                  "control.socket", "process.user"}));
  next = running;
  next.queues.push_back(QueueRange{});
  EXPECT_EQ(RestartOnlyChanges(running, next), Keys{"queues"});
}

TEST(Changes, queue_changes_are_live_where_the_caller_applies_them) {
  Config running;
  Config next = running;
  next.queues[0].count = 2;
  next.queues.push_back(QueueRange{});
  next.metrics.listen = "0.0.0.0:1";
  // The service checks per queue number what may change; here only the
  // process-wide keys remain restart-only.
  EXPECT_EQ(RestartOnlyChanges(running, next, QueueChanges::kLive), Keys{"metrics.listen"});
  EXPECT_EQ(ChangedKeys(running, next), (Keys{"queues", "queues[0].count", "metrics.listen"}));
}

TEST(Changes, batching_is_live_up_to_the_capacity_workers_were_sized_for) {
  Config running;
  running.verdict.batch_size = 64;
  Config next = running;
  next.verdict.batch_size = limits::kLiveBatchSizeCapacity;
  next.verdict.flush_interval_us = 5;
  next.verdict.busy_poll_us = 5;
  next.verdict.latency_budget_us = 25;
  EXPECT_EQ(RestartOnlyChanges(running, next), Keys{});
  EXPECT_EQ(ChangedKeys(running, next),
            (Keys{"verdict.batch_size", "verdict.flush_interval_us", "verdict.busy_poll_us",
                  "verdict.latency_budget_us"}));
  next.verdict.batch_size = limits::kLiveBatchSizeCapacity + 1;
  EXPECT_EQ(RestartOnlyChanges(running, next), Keys{"verdict.batch_size"});
  // A service started with a larger batch size was sized for it.
  running.verdict.batch_size = 10000;
  next.verdict.batch_size = 9000;
  EXPECT_EQ(RestartOnlyChanges(running, next), Keys{});
}

TEST(Changes, equal_configs_have_no_changes) {
  EXPECT_TRUE(ChangedKeys(Config{}, Config{}).empty());
}

}  // namespace
}  // namespace verdictd::config
