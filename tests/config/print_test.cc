#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "verdictd/config/loader.h"

namespace verdictd::config {
namespace {

LoadResult Reload(const Config& config) {
  LoadOptions options;
  options.online_cpus = 4;
  return LoadConfigString(ToToml(config), "printed.toml", options);
}

TEST(ToToml, default_config_loads_back_equal) {
  const LoadResult result = Reload(Config{});
  ASSERT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics) << ToToml(Config{});
  EXPECT_EQ(result.config, Config{});
}

TEST(ToToml, every_field_changed_loads_back_equal) {
  Config config;
  config.verdict.default_verdict = {VerdictKind::kQueue, 300};
  config.verdict.unparseable_verdict = {VerdictKind::kDrop, 0};
  config.verdict.batch_size = 7;
  config.verdict.flush_interval_us = 0;
  config.verdict.busy_poll_us = 20;
  config.metrics = {false, "[::]:1234"};
  config.control = {false, "/tmp/with \"quotes\" and \\ backslash.sock"};
  config.log.level = LogLevel::kOff;
  config.process.user = "nobody";
  QueueRange second;
  second.first = 100;
  second.count = 3;
  second.cpus = {2, 2, 0};
  second.copy_mode = CopyMode::kMeta;
  second.copy_range = 0;
  second.max_length = 4294967295u;
  second.fail_open = false;
  second.gso = false;
  second.conntrack = true;
  second.uid_gid = true;
  second.receive_buffer_bytes = 4096;
  second.receive_batch = 1024;
  config.queues.push_back(second);
  RuleSpec rule;  // rule files must exist to load back, so the rules are inline
  rule.name = "drop \"quoted\" telnet";
  rule.dst_ports = {{23, 23}};
  rule.action.kind = ActionKind::kDrop;
  config.rules.rules.push_back(rule);
  config.rules.engine.log_file = "/var/log/verdictd rules.json";
  const LoadResult result = Reload(config);
  ASSERT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics) << ToToml(config);
  EXPECT_EQ(result.config, config) << ToToml(config);
}

TEST(ToToml, prints_every_key) {
  const std::string text = ToToml(Config{});
  for (const char* key :
       {"[verdict]", "default = \"accept\"", "unparseable = \"accept\"", "batch_size = 256",
        "flush_interval_us = 1000", "busy_poll_us = 0", "[log]", "level = \"info\"",
        "[metrics]", "enabled = true", "listen = \"127.0.0.1:9470\"", "[control]",
        "socket = \"/run/verdictd/control.sock\"", "[process]", "user = \"\"", "[[queues]]",
        "first = 0", "count = 0", "cpus = []", "copy_mode = \"packet\"", "copy_range = 65535",
        "max_length = 4096", "fail_open = true", "gso = true", "conntrack = false",
        "uid_gid = false", "secctx = false", "receive_buffer_bytes = 8388608", "receive_batch = 64"}) {
    EXPECT_NE(text.find(key), std::string::npos) << key << " missing from:\n" << text;
  }
}

TEST(ExampleFile, documented_example_loads_and_sets_every_section) {
  LoadOptions options;
  options.online_cpus = 4;
  const std::string path = std::string(VERDICTD_SOURCE_DIR) + "/docs/verdictd.example.toml";
  const LoadResult result = LoadConfigFile(path, options);
  ASSERT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics);
  // The example shows non-default choices so that a reader sees the syntax.
  EXPECT_EQ(result.config.queues.size(), 2u);
  EXPECT_EQ(ToToml(Reload(result.config).config), ToToml(result.config));
}

TEST(ExampleFile, documentation_mentions_every_printed_key) {
  std::ifstream in(std::string(VERDICTD_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md is missing";
  std::stringstream doc;
  doc << in.rdbuf();
  std::istringstream printed(ToToml(Config{}));
  std::string line;
  while (std::getline(printed, line)) {
    const auto equals = line.find(" = ");
    if (line.empty() || line[0] == '#' || equals == std::string::npos) continue;
    const std::string key = "`" + line.substr(0, equals) + "`";
    EXPECT_NE(doc.str().find(key), std::string::npos) << key << " is not documented";
  }
}

}  // namespace
}  // namespace verdictd::config
