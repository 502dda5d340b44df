#include "verdictd/config/keys.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "verdictd/config/changes.h"
#include "verdictd/config/loader.h"

namespace verdictd::config {
namespace {

// One row of a key table in docs/configuration.md: | `key` | type | default | meaning |
struct DocRow {
  std::string heading;  // the "### ..." line the table is under
  std::string key;
  std::string type;
  std::string default_value;
};

std::string Cell(const std::string& line, std::size_t& at) {
  const std::size_t end = line.find(" | ", at);
  const std::string cell = line.substr(at, end == std::string::npos ? std::string::npos : end - at);
  at = end == std::string::npos ? line.size() : end + 3;
  return cell;
}

std::vector<DocRow> ReadDocRows() {
  std::ifstream in(std::string(VERDICTD_SOURCE_DIR) + "/docs/configuration.md");
  EXPECT_TRUE(in) << "docs/configuration.md is missing";
  std::vector<DocRow> rows;
  std::string heading;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("#", 0) == 0) heading = line;
    if (line.rfind("| `", 0) != 0) continue;
    std::size_t at = 2;
    DocRow row;
    row.heading = heading;
    const std::string key = Cell(line, at);
    row.key = key.substr(1, key.size() - 2);  // without the backticks
    row.type = Cell(line, at);
    row.default_value = Cell(line, at);
    rows.push_back(std::move(row));
  }
  return rows;
}

bool HeadingNames(const std::string& heading, const std::string& section) {
  return heading.rfind("### ", 0) == 0 && heading.find("`" + section + "`") != std::string::npos;
}

TEST(DescribeKeys, documentation_lists_every_key_with_its_range_and_default) {
  const std::vector<DocRow> rows = ReadDocRows();
  ASSERT_FALSE(rows.empty());
  for (const KeyInfo& key : DescribeKeys()) {
    const DocRow* found = nullptr;
    for (const DocRow& row : rows) {
      if (row.key == key.name && HeadingNames(row.heading, key.section)) found = &row;
    }
    ASSERT_NE(found, nullptr) << key.section << " " << key.name
                              << " is not in docs/configuration.md";
    const std::string expected =
        key.default_value == "required" ? "required" : "`" + key.default_value + "`";
    EXPECT_EQ(found->default_value, expected) << key.section << " " << key.name;
    if (key.type == KeyType::kInteger) {
      EXPECT_EQ(found->type, std::to_string(key.min) + "\u2013" + std::to_string(key.max))
          << key.section << " " << key.name;
    }
  }
}

TEST(DescribeKeys, documentation_lists_no_key_that_does_not_exist) {
  const std::vector<KeyInfo> keys = DescribeKeys();
  std::set<std::string> sections;
  for (const KeyInfo& key : keys) sections.insert(key.section);
  std::size_t checked = 0;
  for (const DocRow& row : ReadDocRows()) {
    bool under_a_section = false;
    bool known = false;
    for (const std::string& section : sections) {
      if (!HeadingNames(row.heading, section)) continue;
      under_a_section = true;
      for (const KeyInfo& key : keys) known = known || (key.section == section && key.name == row.key);
    }
    if (!under_a_section) continue;
    ++checked;
    EXPECT_TRUE(known) << "docs/configuration.md documents `" << row.key << "` under \""
                       << row.heading << "\", which has no such key";
  }
  EXPECT_EQ(checked, keys.size());
}

TEST(DescribeKeys, names_each_printed_key_once_in_print_order) {
  Config config;
  ExtensionEntry entry;
  entry.name = "inspect";
  config.extensions.chain.push_back(entry);
  std::istringstream printed(ToToml(config));
  std::vector<std::string> from_print;
  std::string section;
  std::string line;
  while (std::getline(printed, line)) {
    if (line.rfind("[", 0) == 0) section = line;
    const auto equals = line.find(" = ");
    if (line.empty() || line[0] == '#' || equals == std::string::npos) continue;
    from_print.push_back(section + " " + line.substr(0, equals));
  }
  std::vector<std::string> described;
  for (const KeyInfo& key : DescribeKeys()) described.push_back(key.section + " " + key.name);
  EXPECT_EQ(from_print, described);
}

TEST(DescribeKeys, queue_settings_are_per_queue_and_ranges_decide_which_queues_exist) {
  std::map<std::string, Reload> queue_keys;
  for (const KeyInfo& key : DescribeKeys()) {
    if (key.section == "[[queues]]") queue_keys[key.name] = key.reload;
  }
  EXPECT_EQ(queue_keys.at("first"), Reload::kQueueRange);
  EXPECT_EQ(queue_keys.at("count"), Reload::kQueueRange);
  EXPECT_EQ(queue_keys.at("cpus"), Reload::kQueueRange);
  EXPECT_EQ(queue_keys.at("copy_range"), Reload::kQueueSetting);
  EXPECT_EQ(queue_keys.at("receive_batch"), Reload::kQueueSetting);
}

TEST(QueueSettingChanges, names_settings_but_not_which_queues_the_range_has) {
  QueueRange running;
  QueueRange next = running;
  next.first = 7;
  next.count = 3;
  next.cpus = {1, 2, 3};
  EXPECT_EQ(QueueSettingChanges(running, next), "");
  next.copy_mode = CopyMode::kMeta;
  next.gso = false;
  next.receive_buffer_bytes = 4096;
  EXPECT_EQ(QueueSettingChanges(running, next),
            "copy_mode 1 -> 0, gso 1 -> 0, receive_buffer_bytes 8388608 -> 4096");
}

}  // namespace
}  // namespace verdictd::config
