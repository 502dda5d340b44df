#include "verdictd/config/loader.h"

#include <gtest/gtest.h>

#include <string>

namespace verdictd::config {
namespace {

constexpr unsigned kCpus = 4;

LoadResult Load(std::string_view text, std::vector<std::string> overrides = {}) {
  LoadOptions options;
  options.online_cpus = kCpus;
  options.overrides = std::move(overrides);
  return LoadConfigString(text, "test.toml", options);
}

// All diagnostics, one per line.
std::string Errors(std::string_view text, std::vector<std::string> overrides = {}) {
  return FormatDiagnostics(Load(text, std::move(overrides)).diagnostics);
}

TEST(Loader, empty_file_is_the_default_config) {
  const LoadResult result = Load("");
  ASSERT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics);
  EXPECT_EQ(result.config, Config{});
}

TEST(Loader, defaults_equal_default_constructed_config) {
  LoadOptions options;
  options.online_cpus = kCpus;
  const LoadResult result = LoadDefaults(options);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.config, Config{});
}

TEST(Loader, reads_every_key) {
  const LoadResult result = Load(R"(
[verdict]
default = "drop"
unparseable = "queue:100"
batch_size = 32
flush_interval_us = 250
busy_poll_us = 50

[metrics]
enabled = false
listen = "[::1]:9999"

[control]
enabled = false
socket = "/tmp/v.sock"

[log]
level = "debug"

[process]
user = "verdictd"

[[queues]]
first = 10
count = 2
cpus = [3, 1]
copy_mode = "meta"
copy_range = 128
max_length = 100
fail_open = false
gso = false
conntrack = true
uid_gid = true
receive_buffer_bytes = 65536
receive_batch = 8

[[queues]]
first = 20
count = 1
)");
  ASSERT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics);
  const Config& c = result.config;
  EXPECT_EQ(c.verdict.default_verdict.kind, VerdictKind::kDrop);
  EXPECT_EQ(c.verdict.unparseable_verdict.kind, VerdictKind::kQueue);
  EXPECT_EQ(c.verdict.unparseable_verdict.target_queue, 100);
  EXPECT_EQ(c.verdict.batch_size, 32u);
  EXPECT_EQ(c.verdict.flush_interval_us, 250u);
  EXPECT_EQ(c.verdict.busy_poll_us, 50u);
  EXPECT_FALSE(c.metrics.enabled);
  EXPECT_EQ(c.metrics.listen, "[::1]:9999");
  EXPECT_FALSE(c.control.enabled);
  EXPECT_EQ(c.control.socket, "/tmp/v.sock");
  EXPECT_EQ(c.log.level, LogLevel::kDebug);
  EXPECT_EQ(c.process.user, "verdictd");
  ASSERT_EQ(c.queues.size(), 2u);
  const QueueRange& q = c.queues[0];
  EXPECT_EQ(q.first, 10);
  EXPECT_EQ(q.count, 2);
  EXPECT_EQ(q.cpus, (std::vector<int>{3, 1}));
  EXPECT_EQ(q.copy_mode, CopyMode::kMeta);
  EXPECT_EQ(q.copy_range, 128u);
  EXPECT_EQ(q.max_length, 100u);
  EXPECT_FALSE(q.fail_open);
  EXPECT_FALSE(q.gso);
  EXPECT_TRUE(q.conntrack);
  EXPECT_TRUE(q.uid_gid);
  EXPECT_EQ(q.receive_buffer_bytes, 65536u);
  EXPECT_EQ(q.receive_batch, 8u);
  EXPECT_EQ(c.queues[1].first, 20);
  EXPECT_EQ(c.queues[1].receive_batch, QueueRange::kDefaultReceiveBatch);
}

TEST(Loader, unknown_key_suggests_the_nearest_valid_key) {
  EXPECT_EQ(Errors("[verdict]\ndefualt = \"drop\"\n"),
            "test.toml:2:1: verdict.defualt: unknown key; did you mean \"default\"? (valid in "
            "[verdict]: default, unparseable, batch_size, flush_interval_us, busy_poll_us)\n");
}

TEST(Loader, unknown_key_without_a_near_match_lists_the_valid_keys) {
  EXPECT_EQ(Errors("[log]\ncolour = true\n"),
            "test.toml:2:1: log.colour: unknown key (valid in [log]: level)\n");
}

TEST(Loader, unknown_section_suggests_the_nearest_section) {
  EXPECT_EQ(Errors("[metric]\nenabled = true\n"),
            "test.toml:1:2: metric: unknown key; did you mean \"metrics\"? (valid in the top "
            "level: queues, verdict, metrics, control, log, process, extension_host, extensions, rules, sets, rule_files, "
            "rule_engine)\n");
}

TEST(Loader, unknown_queue_key) {
  EXPECT_EQ(Errors("[[queues]]\nfirst = 0\ncount = 1\nfailopen = true\n"),
            "test.toml:4:1: queues[0].failopen: unknown key; did you mean \"fail_open\"? "
            "(valid in [[queues]]: first, count, cpus, copy_mode, copy_range, max_length, "
            "fail_open, gso, conntrack, uid_gid, secctx, receive_buffer_bytes, receive_batch)\n");
}

TEST(Loader, wrong_types_name_expected_and_found) {
  EXPECT_EQ(Errors("[verdict]\nbatch_size = \"big\"\n"),
            "test.toml:2:14: verdict.batch_size: expected an integer from 1 to 65536, found "
            "string \"big\"\n");
  EXPECT_EQ(Errors("[metrics]\nenabled = 1\n"),
            "test.toml:2:11: metrics.enabled: expected true or false, found integer 1\n");
  EXPECT_EQ(Errors("[verdict]\nflush_interval_us = 1.5\n"),
            "test.toml:2:21: verdict.flush_interval_us: expected an integer from 0 to 1000000, "
            "found float 1.5\n");
  EXPECT_EQ(Errors("verdict = 3\n"),
            "test.toml:1:11: verdict: expected a table ([verdict]), found integer 3\n");
  EXPECT_EQ(Errors("[queues]\nfirst = 1\n"),
            "test.toml:1:1: queues: expected an array of tables ([[queues]]), found a table\n");
  EXPECT_EQ(Errors("[[queues]]\ncount = 2\ncpus = \"0-1\"\n"),
            "test.toml:3:8: queues[0].cpus: expected an array of CPU numbers (e.g. [0, 1]), "
            "found string \"0-1\"\n");
  EXPECT_EQ(Errors("[process]\nuser = 0\n"),
            "test.toml:2:8: process.user: expected a user name (letters, digits, '.', '_', "
            "'-'; at most 32 bytes) or \"\" to keep the starting user, found integer 0\n");
}

TEST(Loader, out_of_range_values) {
  EXPECT_EQ(Errors("[[queues]]\ncopy_range = 70000\n"),
            "test.toml:2:14: queues[0].copy_range: expected an integer from 0 to 65535, found "
            "integer 70000\n");
  EXPECT_EQ(Errors("[[queues]]\nfirst = -1\n"),
            "test.toml:2:9: queues[0].first: expected an integer from 0 to 65535, found "
            "integer -1\n");
  EXPECT_EQ(Errors("[[queues]]\nmax_length = 0\n"),
            "test.toml:2:14: queues[0].max_length: expected an integer from 1 to 4294967295, "
            "found integer 0\n");
  EXPECT_EQ(Errors("[[queues]]\nreceive_buffer_bytes = 100\n"),
            "test.toml:2:24: queues[0].receive_buffer_bytes: expected an integer from 4096 to "
            "1073741824, found integer 100\n");
  EXPECT_EQ(Errors("[verdict]\nbatch_size = 0\n"),
            "test.toml:2:14: verdict.batch_size: expected an integer from 1 to 65536, found "
            "integer 0\n");
}

TEST(Loader, bad_enumerations_suggest_the_nearest_word) {
  EXPECT_EQ(Errors("[verdict]\ndefault = \"dorp\"\n"),
            "test.toml:2:11: verdict.default: expected one of \"accept\", \"drop\", \"repeat\", "
            "\"stop\", \"queue:N\", found string \"dorp\"; did you mean \"drop\"?\n");
  EXPECT_EQ(Errors("[verdict]\nunparseable = \"queue:70000\"\n"),
            "test.toml:2:15: verdict.unparseable: expected one of \"accept\", \"drop\", "
            "\"repeat\", \"stop\", \"queue:N\", found string \"queue:70000\"\n");
  EXPECT_EQ(Errors("[log]\nlevel = \"warning\"\n"),
            "test.toml:2:9: log.level: expected one of \"trace\", \"debug\", \"info\", \"warn\", "
            "\"error\", \"off\", found string \"warning\"; did you mean \"warn\"?\n");
  EXPECT_EQ(Errors("[[queues]]\ncopy_mode = \"full\"\n"),
            "test.toml:2:13: queues[0].copy_mode: expected one of \"packet\", \"meta\", found "
            "string \"full\"\n");
}

TEST(Loader, bad_addresses_and_paths) {
  EXPECT_EQ(Errors("[metrics]\nlisten = \"localhost\"\n"),
            "test.toml:2:10: metrics.listen: expected an address \"host:port\" (e.g. "
            "\"127.0.0.1:9470\" or \"[::1]:9470\"), found string \"localhost\"\n");
  EXPECT_EQ(Errors("[metrics]\nlisten = \"1.2.3.4:70000\"\n"),
            "test.toml:2:10: metrics.listen: expected an address \"host:port\" (e.g. "
            "\"127.0.0.1:9470\" or \"[::1]:9470\"), found string \"1.2.3.4:70000\"\n");
  EXPECT_EQ(Errors("[control]\nsocket = \"relative.sock\"\n"),
            "test.toml:2:10: control.socket: expected an absolute path of at most 107 bytes, "
            "found string \"relative.sock\"\n");
  EXPECT_EQ(Errors("[process]\nuser = \"root; rm\"\n"),
            "test.toml:2:8: process.user: expected a user name (letters, digits, '.', '_', "
            "'-'; at most 32 bytes) or \"\" to keep the starting user, found string \"root; "
            "rm\"\n");
}

TEST(Loader, overlapping_queue_ranges) {
  EXPECT_EQ(Errors("[[queues]]\nfirst = 0\ncount = 4\n\n[[queues]]\nfirst = 2\ncount = 4\n"),
            "test.toml:6:9: queues[1].first: expected queue numbers no other range serves, "
            "found queues 2-5, overlapping queues[0] (queues 0-3, at test.toml:1:1); every "
            "queue number is served by one worker; move or shrink one range\n");
}

TEST(Loader, per_cpu_range_overlap_uses_the_online_cpu_count) {
  // count 0: one queue per online CPU (4 here), so 0-3 and 3 overlap.
  EXPECT_EQ(Errors("[[queues]]\nfirst = 0\n\n[[queues]]\nfirst = 3\ncount = 1\ncpus = [0]\n"),
            "test.toml:5:9: queues[1].first: expected queue numbers no other range serves, "
            "found queue 3, overlapping queues[0] (queues 0-3, at test.toml:1:1); every queue "
            "number is served by one worker; move or shrink one range\n");
  EXPECT_EQ(Errors("[[queues]]\nfirst = 0\n\n[[queues]]\nfirst = 4\ncount = 1\ncpus = [0]\n"),
            "");
}

TEST(Loader, more_queues_than_cpus_share_cpus_round_robin) {
  EXPECT_EQ(Errors("[[queues]]\ncount = 8\n"), "");
  EXPECT_EQ(Errors("[[queues]]\ncount = 8\ncpus = [0, 1, 2, 3, 0, 1, 2, 3]\n"), "");
}

TEST(Loader, cpus_that_are_not_online) {
  EXPECT_EQ(Errors("[[queues]]\ncount = 2\ncpus = [1, 7]\n"),
            "test.toml:3:12: queues[0].cpus[1]: expected an online CPU (0 to 3), found CPU 7; "
            "this machine has 4 online CPUs\n");
  EXPECT_EQ(Errors("[[queues]]\ncount = 1\ncpus = [5000]\n"),
            "test.toml:3:9: queues[0].cpus[0]: expected a CPU number from 0 to 4095, found "
            "integer 5000\n");
}

TEST(Loader, cpus_list_must_match_the_queue_count) {
  EXPECT_EQ(Errors("[[queues]]\ncount = 2\ncpus = [0, 1, 2]\n"),
            "test.toml:3:8: queues[0].cpus: expected 2 CPUs, one per queue (count is 2), found "
            "3 CPUs\n");
  EXPECT_EQ(Errors("[[queues]]\ncpus = [0]\n"),
            "test.toml:2:8: queues[0].cpus: expected 4 CPUs, one per queue (count is 0: one "
            "queue per online CPU), found 1 CPUs\n");
}

TEST(Loader, range_past_the_last_queue_number) {
  EXPECT_EQ(Errors("[[queues]]\nfirst = 65535\ncount = 2\ncpus = [0, 1]\n"),
            "test.toml:3:9: queues[0].count: expected first + count - 1 to be at most 65535, "
            "found queues 65535-65536; queue numbers are 16-bit\n");
}

TEST(Loader, verdict_into_own_queue_loops) {
  EXPECT_EQ(Errors("[verdict]\ndefault = \"queue:2\"\n[[queues]]\nfirst = 0\ncount = 4\n"),
            "test.toml:2:11: verdict.default: expected a queue verdictd does not serve itself, "
            "found \"queue:2\", served by queues[0] (queues 0-3); packets would come back to "
            "verdictd forever\n");
  EXPECT_EQ(Errors("[verdict]\ndefault = \"queue:9\"\n[[queues]]\nfirst = 0\ncount = 4\n"), "");
}

TEST(Loader, empty_queue_list_is_an_error) {
  EXPECT_EQ(Errors("queues = []\n"),
            "test.toml:1:10: queues: expected at least one [[queues]] table, found none; "
            "verdictd needs a queue to serve\n");
}

TEST(Loader, reports_every_error_at_once_in_file_order) {
  const LoadResult result = Load(R"([verdict]
default = "maybe"
batch_size = -3
[log]
level = 7
[[queues]]
copy_range = 100000
colour = "red"
)");
  ASSERT_EQ(result.diagnostics.size(), 5u) << FormatDiagnostics(result.diagnostics);
  EXPECT_EQ(result.diagnostics[0].key, "verdict.default");
  EXPECT_EQ(result.diagnostics[1].key, "verdict.batch_size");
  EXPECT_EQ(result.diagnostics[2].key, "log.level");
  EXPECT_EQ(result.diagnostics[3].key, "queues[0].copy_range");
  EXPECT_EQ(result.diagnostics[4].key, "queues[0].colour");
}

TEST(Loader, a_bad_key_does_not_cause_knock_on_contradictions) {
  // first is invalid; its range must not also be reported as overlapping.
  EXPECT_EQ(Errors("[[queues]]\nfirst = 0\ncount = 2\n[[queues]]\nfirst = \"x\"\ncount = 2\n"),
            "test.toml:5:9: queues[1].first: expected an integer from 0 to 65535, found string "
            "\"x\"\n");
}

TEST(Loader, syntax_error_names_line_and_column) {
  EXPECT_EQ(Errors("[verdict]\ndefault = \n"),
            "test.toml:2:11: invalid TOML: Error while parsing key-value pair: expected value, "
            "saw '\\n'\n");
}

// The lines of the diagnostics, in order.
std::vector<int> Lines(const LoadResult& result) {
  std::vector<int> lines;
  for (const Diagnostic& d : result.diagnostics) lines.push_back(d.line);
  return lines;
}

TEST(Loader, reports_every_syntax_error_not_only_the_first) {
  const LoadResult result = Load(
      "[verdict]\n"
      "default = \n"          // 2: no value
      "batch_size = 8\n"
      "[[queues]\n"           // 4: unclosed header
      "first = 1\n"
      "count = = 2\n"         // 6: two equals signs
      "copy_range = 64\n");
  EXPECT_EQ(Lines(result), (std::vector<int>{2, 4, 6})) << FormatDiagnostics(result.diagnostics);
  for (const Diagnostic& d : result.diagnostics) {
    EXPECT_EQ(d.file, "test.toml");
    EXPECT_GT(d.column, 0);
    EXPECT_EQ(d.message.rfind("invalid TOML: ", 0), 0u) << d.message;
  }
}

TEST(Loader, values_are_checked_only_without_syntax_errors) {
  // The unknown key and the bad verdict would be reported for a file that
  // parses; with a syntax error they may be artifacts of the blanked line.
  EXPECT_EQ(Lines(Load("[verdict]\ndefualt = \"dorp\"\nthis is not toml\n")),
            std::vector<int>{3});
}

TEST(Loader, an_error_at_the_end_of_the_document_is_reported_once) {
  const LoadResult result = Load("[verdict]\ndefault = \"\"\"accept\nbatch_size = 8\n");
  ASSERT_EQ(result.diagnostics.size(), 1u) << FormatDiagnostics(result.diagnostics);
  EXPECT_NE(result.diagnostics[0].message.find("invalid TOML"), std::string::npos);
}

TEST(Loader, stops_after_twenty_syntax_errors_and_says_so) {
  std::string text;
  for (int i = 0; i < 30; ++i) text += "bad line " + std::to_string(i) + "\n";
  const LoadResult result = Load(text);
  ASSERT_EQ(result.diagnostics.size(), 21u);
  EXPECT_EQ(result.diagnostics[19].line, 20);
  EXPECT_EQ(result.diagnostics[20].message,
            "stopped after 20 syntax errors; fix these and check again");
}

TEST(Loader, rules_section_keys_are_not_unknown) {
  const LoadResult result = Load(
      "[[rules]]\nname = \"a\"\nsrc = [\"@s\"]\naction = \"drop\"\n[sets.s]\nprefixes = [\"10.0.0.0/8\"]\n"
      "[rule_engine]\nlog_rate = 5\n");
  EXPECT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics);
}

TEST(Loader, missing_file_is_one_diagnostic) {
  LoadOptions options;
  options.online_cpus = kCpus;
  const LoadResult result = LoadConfigFile("/nonexistent/verdictd.toml", options);
  EXPECT_EQ(FormatDiagnostics(result.diagnostics),
            "/nonexistent/verdictd.toml: cannot open the file: No such file or directory\n");
}

TEST(Overrides, replace_file_values) {
  const LoadResult result =
      Load("[verdict]\ndefault = \"accept\"\n[[queues]]\nfirst = 0\ncount = 1\n",
           {"verdict.default=drop", "queues[0].count=2", "log.level=\"debug\""});
  ASSERT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics);
  EXPECT_EQ(result.config.verdict.default_verdict.kind, VerdictKind::kDrop);
  EXPECT_EQ(result.config.queues[0].count, 2);
  EXPECT_EQ(result.config.log.level, LogLevel::kDebug);
}

TEST(Overrides, create_missing_sections_and_queue_ranges) {
  const LoadResult result = Load("", {"queues[0].first=8", "queues[0].count=2",
                                      "queues[1].first=20", "queues[1].count=1",
                                      "queues[1].cpus=[3]"});
  ASSERT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics);
  ASSERT_EQ(result.config.queues.size(), 2u);
  EXPECT_EQ(result.config.queues[0].first, 8);
  EXPECT_EQ(result.config.queues[1].cpus, std::vector<int>{3});
}

TEST(Overrides, errors_name_the_command_line) {
  EXPECT_EQ(Errors("", {"verdict.batch_size=0"}),
            "<command line>: verdict.batch_size: expected an integer from 1 to 65536, found "
            "integer 0\n");
  EXPECT_EQ(Errors("", {"verdict.defalt=drop"}),
            "<command line>: verdict.defalt: unknown key; did you mean \"default\"? (valid in "
            "[verdict]: default, unparseable, batch_size, flush_interval_us, busy_poll_us)\n");
  EXPECT_EQ(Errors("", {"nonsense"}),
            "<command line>: expected key=value, found \"nonsense\"\n");
  EXPECT_EQ(Errors("", {"queues[5].first=1"}),
            "<command line>: queues[5].first: expected an index up to 0 for queues, found 5\n");
}

TEST(Validate, config_built_in_code) {
  Config config;
  config.queues[0].count = 2;
  config.queues.push_back(config.queues[0]);
  config.queues[1].first = 1;
  config.queues[1].copy_range = 100000;
  config.metrics.listen = "nowhere";
  EXPECT_EQ(FormatDiagnostics(ValidateConfig(config, 2)),
            "<command line>: queues[1].copy_range: expected an integer from 0 to 65535, found "
            "integer 100000\n"
            "<command line>: metrics.listen: expected an address \"host:port\" (e.g. "
            "\"127.0.0.1:9470\" or \"[::1]:9470\"), found string \"nowhere\"\n"
            "<command line>: queues[1].first: expected queue numbers no other range serves, "
            "found queues 1-2, overlapping queues[0] (queues 0-1); every queue number is served "
            "by one worker; move or shrink one range\n");
  EXPECT_TRUE(ValidateConfig(Config{}, 2).empty());
}

TEST(Values, queue_count_follows_online_cpus_when_zero) {
  QueueRange range;
  EXPECT_EQ(QueueCount(range, 3), 3u);
  range.count = 5;
  EXPECT_EQ(QueueCount(range, 3), 5u);
}

}  // namespace
}  // namespace verdictd::config
