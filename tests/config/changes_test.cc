#include "verdictd/config/changes.h"

#include <gtest/gtest.h>

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

TEST(Changes, sockets_threads_and_privileges_need_a_restart) {
  Config running;
  Config next = running;
  next.queues[0].count = 2;
  next.queues[0].receive_buffer_bytes = 4096;
  next.metrics.listen = "0.0.0.0:1";
  next.control.socket = "/tmp/x";
  next.process.user = "nobody";
  next.verdict.batch_size = 8;
  next.verdict.flush_interval_us = 5;
  next.verdict.busy_poll_us = 5;
  EXPECT_EQ(RestartOnlyChanges(running, next),
            (Keys{"queues[0].count", "queues[0].receive_buffer_bytes", "verdict.batch_size",
                  "verdict.flush_interval_us", "verdict.busy_poll_us", "metrics.listen",
                  "control.socket", "process.user"}));
  next = running;
  next.queues.push_back(QueueRange{});
  EXPECT_EQ(RestartOnlyChanges(running, next), Keys{"queues"});
}

TEST(Changes, equal_configs_have_no_changes) {
  EXPECT_TRUE(ChangedKeys(Config{}, Config{}).empty());
}

}  // namespace
}  // namespace verdictd::config
