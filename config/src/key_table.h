// The keys of each section of the file, declared once: name, type, range,
// default (the section struct's own), help and whether a reload applies a
// change live. One table per section drives the reading and the unknown-key
// check (loader.cc), --print-config (print.cc), the checks of a Config built
// in code (checks.cc), the reload diff (changes.cc) and the key reference
// (keys.h, tested against docs/configuration.md). The tables themselves are
// in key_tables.cc; adding a key is one line there, plus its field.
#pragma once

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "checks.h"
#include "verdictd/config/config.h"
#include "verdictd/config/keys.h"

namespace verdictd::config {

class TomlReader;

template <typename S>
struct Key {
  std::string_view name;
  KeyType type = KeyType::kInteger;
  std::int64_t min = 0;  // kInteger only
  std::int64_t max = 0;
  Reload reload = Reload::kLive;
  std::string_view help;
  bool required = false;  // no default: every entry must set it
  std::span<const std::string_view> words;  // kChoice: the accepted words
  std::string (*problem)(std::string_view) = nullptr;  // kString: what a value must be

  // Reads table[name] into the section, reporting a bad value.
  void (*read)(TomlReader&, const toml::table&, const std::string& prefix, const Key&,
               S&) = nullptr;
  // The value as TOML ("8388608", "\"packet\"", "[0, 1]").
  void (*print)(std::ostream&, const S&) = nullptr;
  // The value as the service's logs show it ("65535", "1" for true).
  std::string (*log_text)(const S&) = nullptr;
  bool (*same)(const S&, const S&) = nullptr;
  // Range and value checks of a Config built in code (the reader checks as it reads).
  void (*check)(const S&, const std::string& key, const Key&, const SourceMap&,
                std::vector<Diagnostic>&) = nullptr;
  // When set, decides instead of `reload` whether a change is live.
  bool (*live_if)(const S& running, const S& next) = nullptr;
  // A comment printed after the value ("  # one queue per online CPU"), or "".
  const char* (*note)(const S&) = nullptr;
};

template <typename S>
using KeyTable = std::span<const Key<S>>;

// The tables (key_tables.cc), in the order the keys are printed and checked.
KeyTable<VerdictSection> VerdictKeys();
KeyTable<LogSection> LogKeys();
KeyTable<MetricsSection> MetricsKeys();
KeyTable<ControlSection> ControlKeys();
KeyTable<ProcessSection> ProcessKeys();
KeyTable<QueueRange> QueueKeys();
KeyTable<ExtensionsSection> ExtensionHostKeys();
KeyTable<ExtensionEntry> ExtensionKeys();

template <typename S>
std::vector<std::string_view> KeyNames(KeyTable<S> keys) {
  std::vector<std::string_view> names;
  for (const Key<S>& key : keys) names.push_back(key.name);
  return names;
}

// Reads every key of `keys` present in `table` into `out`.
template <typename S>
void ReadKeys(TomlReader& reader, const toml::table& table, const std::string& prefix,
              KeyTable<S> keys, S& out) {
  for (const Key<S>& key : keys) key.read(reader, table, prefix, key, out);
}

// "name = value\n" for every key.
template <typename S>
void PrintKeys(std::ostream& out, KeyTable<S> keys, const S& section) {
  for (const Key<S>& key : keys) {
    out << key.name << " = ";
    key.print(out, section);
    if (key.note != nullptr) out << key.note(section);
    out << '\n';
  }
}

// Calls add(prefix + name, live) for every key that differs; a queue key is
// live when `live_queues` (the caller adds and removes workers, and compares
// a queue that stays itself).
template <typename S, typename Add>
void CompareKeys(KeyTable<S> keys, const S& running, const S& next, const std::string& prefix,
                 bool live_queues, Add&& add) {
  for (const Key<S>& key : keys) {
    if (key.same(running, next)) continue;
    bool live = key.reload == Reload::kLive;
    if (key.reload == Reload::kQueueRange || key.reload == Reload::kQueueSetting) {
      live = live_queues;
    }
    if (key.live_if != nullptr) live = key.live_if(running, next);
    add(prefix + std::string(key.name), live);
  }
}

template <typename S>
void CheckKeyValues(KeyTable<S> keys, const S& section, const std::string& prefix,
                    const SourceMap& map, std::vector<Diagnostic>& out) {
  for (const Key<S>& key : keys) {
    if (key.check != nullptr) key.check(section, prefix + std::string(key.name), key, map, out);
  }
}

}  // namespace verdictd::config
