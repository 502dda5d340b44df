// The LIBIPQ_* environment: defaults, every variable, and the errors.
#include "settings.hh"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace verdictd::libipq {
namespace {

std::map<std::string, std::string> g_env;

const char* Lookup(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

std::string Read(std::map<std::string, std::string> env, Settings& out) {
  g_env = std::move(env);
  return ReadSettings(Lookup, out);
}

TEST(Settings, defaults_bind_queue_zero_and_drop_like_ip_queue) {
  Settings s;
  EXPECT_EQ(Read({}, s), "");
  EXPECT_EQ(s.queue_num, 0);
  EXPECT_FALSE(s.fail_open);
  EXPECT_EQ(s.receive_buffer_bytes, 8u << 20);
  EXPECT_EQ(s.max_queue_length, 4096u);
  EXPECT_EQ(s.batch_size, 64u);
  EXPECT_EQ(s.coalesce_us, 2000u);
}

TEST(Settings, every_variable_is_read) {
  Settings s;
  EXPECT_EQ(Read({{"LIBIPQ_QUEUE", "65535"},
                  {"LIBIPQ_RCVBUF", "16m"},
                  {"LIBIPQ_QUEUE_MAXLEN", "100"},
                  {"LIBIPQ_FAIL_OPEN", "1"},
                  {"LIBIPQ_BATCH", "1"},
                  {"LIBIPQ_COALESCE_US", "0"}},
                 s),
            "");
  EXPECT_EQ(s.queue_num, 65535);
  EXPECT_EQ(s.receive_buffer_bytes, 16u << 20);
  EXPECT_EQ(s.max_queue_length, 100u);
  EXPECT_TRUE(s.fail_open);
  EXPECT_EQ(s.batch_size, 1u);
  EXPECT_EQ(s.coalesce_us, 0u);
  EXPECT_EQ(Read({{"LIBIPQ_RCVBUF", "512k"}}, s), "");
  EXPECT_EQ(s.receive_buffer_bytes, 512u << 10);
}

TEST(Settings, invalid_value_names_variable_and_range_and_changes_nothing) {
  const std::pair<const char*, const char*> bad[] = {
      {"LIBIPQ_QUEUE", "65536"},        {"LIBIPQ_QUEUE", "-1"},
      {"LIBIPQ_QUEUE", "1x"},           {"LIBIPQ_QUEUE", ""},
      {"LIBIPQ_RCVBUF", "10"},          {"LIBIPQ_RCVBUF", "9g"},
      {"LIBIPQ_FAIL_OPEN", "yes"},      {"LIBIPQ_BATCH", "0"},
      {"LIBIPQ_BATCH", "1025"},         {"LIBIPQ_QUEUE_MAXLEN", "0"},
      {"LIBIPQ_COALESCE_US", "100001"}, {"LIBIPQ_RCVBUF", "99999999999999999999"},
  };
  for (const auto& [name, value] : bad) {
    Settings s;
    s.queue_num = 7;
    // A valid LIBIPQ_QUEUE read before the bad variable is not applied either.
    std::map<std::string, std::string> env = {{name, value}};
    env.emplace("LIBIPQ_QUEUE", "3");
    const std::string problem = Read(env, s);
    EXPECT_NE(problem.find(std::string(name) + "='" + value + "': expected"), std::string::npos)
        << problem;
    EXPECT_EQ(s.queue_num, 7) << name;
  }
}

}  // namespace
}  // namespace verdictd::libipq
