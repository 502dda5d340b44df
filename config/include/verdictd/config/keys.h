// The reference of every key of the configuration file, from the same
// tables the loader reads with, the printer prints and the reload diff
// compares (so it cannot drift from them): for documentation and its test.
// Control plane: allocates; never throws except std::bad_alloc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace verdictd::config {

enum class KeyType : std::uint8_t {
  kBoolean,
  kInteger,  // with a range
  kString,   // free text with a value check (a path, an address, a user)
  kChoice,   // one word of a fixed list
  kVerdict,  // "accept", "drop", "repeat", "stop" or "queue:N"
  kCpuList,  // an array of CPU numbers
};

// What a reload does with a changed key.
enum class Reload : std::uint8_t {
  kLive,          // the next policy takes it
  kRestart,       // bound once per process (a socket, a privilege, a table size)
  kQueueRange,    // which queues exist: live when the caller adds and removes workers
  kQueueSetting,  // how one queue is bound: the caller refuses a change to a queue that stays
};

struct KeyInfo {
  std::string section;        // as the file writes it: "[verdict]", "[[queues]]"
  std::string name;           // "batch_size"
  KeyType type = KeyType::kInteger;
  std::int64_t min = 0;       // kInteger only
  std::int64_t max = 0;
  std::string default_value;  // as TOML ("256", "\"accept\"", "[]"); "required" if none
  std::string help;           // one line
  Reload reload = Reload::kLive;
};

// Every key of the sections verdictd itself reads, section by section in
// the order --print-config prints them. The rule language's keys are
// documented in docs/rules.md.
std::vector<KeyInfo> DescribeKeys();

}  // namespace verdictd::config
