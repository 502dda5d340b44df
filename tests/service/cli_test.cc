#include "verdictd/service/cli.h"

#include <gtest/gtest.h>

#include <string>

#include "verdictd/config/values.h"

namespace verdictd::service {
namespace {

// Parses `args` as `verdictd args` and applies them to a default Config.
config::Config Parse(const std::string& args) {
  CLI::App app;
  RunOptions options;
  AddRunFlags(app, options);
  app.parse(args, false);
  config::Config config;
  ApplyRunOptions(options, config);
  return config;
}

TEST(Cli, no_flags_keeps_the_embedded_defaults) {
  EXPECT_EQ(Parse(""), config::Config{});
}

TEST(Cli, queue_range_sets_first_and_count) {
  const config::Config config = Parse("--queues 2:5");
  ASSERT_EQ(config.queues.size(), 1u);
  EXPECT_EQ(config.queues[0].first, 2);
  EXPECT_EQ(config.queues[0].count, 4);
  const config::Config single = Parse("--queue-first 7 --queue-count 1");
  EXPECT_EQ(single.queues[0].first, 7);
  EXPECT_EQ(single.queues[0].count, 1);
}

TEST(Cli, switches_turn_flags_on_and_off) {
  const config::Config config = Parse("--no-fail-open --no-gso --conntrack --uid-gid");
  EXPECT_FALSE(config.queues[0].fail_open);
  EXPECT_FALSE(config.queues[0].gso);
  EXPECT_TRUE(config.queues[0].conntrack);
  EXPECT_TRUE(config.queues[0].uid_gid);
}

TEST(Cli, values_reach_the_config) {
  const config::Config config = Parse(
      "--cpus 0,2-3 --copy-mode meta --copy-range 128 --queue-maxlen 16 --rcvbuf 4M "
      "--batch-size 32 --flush-us 50 --busy-poll-us 20 --default-verdict queue:9 "
      "--log-level debug");
  EXPECT_EQ(config.queues[0].cpus, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(config.queues[0].copy_mode, config::CopyMode::kMeta);
  EXPECT_EQ(config.queues[0].copy_range, 128u);
  EXPECT_EQ(config.queues[0].max_length, 16u);
  EXPECT_EQ(config.queues[0].receive_buffer_bytes, 4u << 20);
  EXPECT_EQ(config.verdict.batch_size, 32u);
  EXPECT_EQ(config.verdict.flush_interval_us, 50u);
  EXPECT_EQ(config.verdict.busy_poll_us, 20u);
  EXPECT_EQ(config.verdict.default_verdict.kind, config::VerdictKind::kQueue);
  EXPECT_EQ(config.verdict.default_verdict.target_queue, 9);
  EXPECT_EQ(config.log.level, config::LogLevel::kDebug);
}

TEST(Cli, rejects_bad_values_as_usage_errors) {
  for (const char* args : {"--queues 5:3", "--queues x", "--queues 1:70000",
                           "--default-verdict maybe", "--default-verdict queue:",
                           "--cpus 3-1", "--cpus a", "--copy-mode all", "--copy-range 70000",
                           "--queue-maxlen 0", "--rcvbuf 8X", "--batch-size 0",
                           "--log-level loud", "--queues 0:1 --queue-first 2", "--frobnicate"}) {
    EXPECT_THROW(Parse(args), CLI::ParseError) << args;
  }
}

TEST(Cli, range_flags_need_a_single_configured_range) {
  CLI::App app;
  RunOptions options;
  AddRunFlags(app, options);
  app.parse("--queue-count 2", false);
  config::Config config;
  config.queues.resize(2);
  EXPECT_THROW(ApplyRunOptions(options, config), std::invalid_argument);
  RunOptions replace;
  replace.queue_first = 4;
  replace.queue_count = 2;
  ApplyRunOptions(replace, config);
  ASSERT_EQ(config.queues.size(), 1u);
  EXPECT_EQ(config.queues[0].first, 4);
}

TEST(CliHelpers, parse_verdicts_sizes_and_cpu_lists) {
  EXPECT_EQ(ParseVerdict("drop").kind, config::VerdictKind::kDrop);
  EXPECT_EQ(ParseVerdict("repeat").kind, config::VerdictKind::kRepeat);
  EXPECT_EQ(config::VerdictSettingText(ParseVerdict("queue:3")), "queue:3");
  EXPECT_EQ(ParseByteSize("64k"), 65536u);
  EXPECT_EQ(ParseByteSize("1G"), std::size_t{1} << 30);
  EXPECT_EQ(ParseCpuList("1"), (std::vector<int>{1}));
  EXPECT_EQ(ParseQueueRange("3"), (std::pair<std::uint16_t, std::uint16_t>{3, 1}));
  EXPECT_THROW(ParseCpuList(""), std::invalid_argument);
}

}  // namespace
}  // namespace verdictd::service
