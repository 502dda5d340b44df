// Many broken files: each must give at least one diagnostic, and none may
// crash, hang or trip the sanitizers.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "verdictd/config/loader.h"

namespace verdictd::config {
namespace {

constexpr const char* kValid = R"([verdict]
default = "drop"
unparseable = "accept"
batch_size = 32
flush_interval_us = 500

[log]
level = "debug"

[metrics]
listen = "127.0.0.1:9470"

[[queues]]
first = 0
count = 2
cpus = [0, 1]
copy_range = 1500
)";

LoadResult Load(std::string_view text) {
  LoadOptions options;
  options.online_cpus = 2;
  return LoadConfigString(text, "fuzz.toml", options);
}

TEST(Fuzz, the_seed_file_is_valid) { ASSERT_TRUE(Load(kValid).ok()); }

TEST(Fuzz, every_truncation_loads_or_fails_cleanly) {
  const std::string valid = kValid;
  std::size_t failures = 0;
  for (std::size_t n = 0; n < valid.size(); ++n) {
    const LoadResult result = Load(valid.substr(0, n));
    if (!result.ok()) ++failures;
    for (const Diagnostic& d : result.diagnostics) {
      EXPECT_FALSE(d.ToString().empty());
    }
  }
  // Cuts inside keys, strings, headers and arrays are errors; cuts after a
  // complete value are shorter valid files. Most cuts fall in the first kind.
  EXPECT_GT(failures, valid.size() / 2) << failures << " of " << valid.size();
  EXPECT_FALSE(Load("[verdict]\ndefault = \"dro").ok());
  EXPECT_FALSE(Load("[verdict]\ndefault = ").ok());
  EXPECT_FALSE(Load("[[queues]\n").ok());
  EXPECT_FALSE(Load("[[queues]]\ncpus = [0, 1").ok());
}

TEST(Fuzz, wrong_types_for_every_key_are_errors) {
  const char* keys[] = {"verdict.default", "verdict.unparseable", "verdict.batch_size",
                        "verdict.flush_interval_us", "verdict.busy_poll_us", "metrics.enabled",
                        "metrics.listen", "control.enabled", "control.socket", "log.level",
                        "process.user", "queues[0].first", "queues[0].count", "queues[0].cpus",
                        "queues[0].copy_mode", "queues[0].copy_range", "queues[0].max_length",
                        "queues[0].fail_open", "queues[0].gso", "queues[0].conntrack",
                        "queues[0].uid_gid", "queues[0].secctx", "queues[0].receive_buffer_bytes",
                        "queues[0].receive_batch"};
  const char* values[] = {"1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "{ a = 1 }",
                          "[[1], [2]]", "nan", "-inf", "1e300", "-9223372036854775808",
                          "9223372036854775807", "\"\\u0000\""};
  for (const char* key : keys) {
    for (const char* value : values) {
      LoadOptions options;
      options.online_cpus = 2;
      options.overrides = {std::string(key) + "=" + value};
      const LoadResult result = LoadDefaults(options);
      EXPECT_FALSE(result.ok()) << key << " = " << value;
    }
  }
}

TEST(Fuzz, huge_numbers_are_errors) {
  EXPECT_FALSE(Load("[verdict]\nbatch_size = 99999999999999999999999\n").ok());
  EXPECT_FALSE(Load("[verdict]\nbatch_size = 9223372036854775807\n").ok());
  EXPECT_FALSE(Load("[[queues]]\nfirst = 0x7fffffffffffffff\n").ok());
  EXPECT_FALSE(Load("[[queues]]\ncpus = [9223372036854775807]\n").ok());
  EXPECT_FALSE(Load("[[queues]]\nreceive_buffer_bytes = 1e12\n").ok());
}

TEST(Fuzz, deep_nesting_is_an_error_not_a_stack_overflow) {
  EXPECT_FALSE(Load("x = " + std::string(100000, '[') + std::string(100000, ']')).ok());
  std::string tables = "[" + std::string(5000, 'a');
  for (int i = 0; i < 5000; ++i) tables += ".a";
  EXPECT_FALSE(Load(tables + "]\n").ok());
}

TEST(Fuzz, random_binary_junk_is_an_error) {
  std::mt19937 random(12345);
  for (int round = 0; round < 2000; ++round) {
    std::string junk(random() % 300, '\0');
    for (char& c : junk) c = static_cast<char>(random() % 256);
    const LoadResult result = Load(junk);
    // Junk almost never parses; when it does, it is an empty or comment-only
    // document and equals the defaults.
    if (result.ok()) {
      EXPECT_EQ(result.config, Config{}) << round;
    }
  }
}

TEST(Fuzz, random_mutations_of_a_valid_file_never_crash) {
  std::mt19937 random(777);
  const std::string valid = kValid;
  const char alphabet[] = "[]{}=\"'.,#\n 0123456789-_abcdefgxyz\\\t\x01\xff\xc3";
  int failures = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = valid;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = random() % text.size();
      switch (random() % 3) {
        case 0:
          text[at] = alphabet[random() % (sizeof alphabet - 1)];
          break;
        case 1:
          text.erase(at, 1 + random() % 8);
          break;
        default:
          text.insert(at, 1, alphabet[random() % (sizeof alphabet - 1)]);
          break;
      }
      if (text.empty()) text = "x";
    }
    const LoadResult result = Load(text);
    if (!result.ok()) {
      ++failures;
      for (const Diagnostic& d : result.diagnostics) EXPECT_FALSE(d.message.empty());
    }
  }
  // Most mutations break something; the exact share does not matter.
  EXPECT_GT(failures, 1000);
}

}  // namespace
}  // namespace verdictd::config
