// ToToml: the effective configuration as a commented TOML document, printed
// through the key tables (key_tables.cc), so every key read is printed.
#include <sstream>

#include <toml++/toml.h>

#include "key_table.h"
#include "verdictd/config/rule_section.h"
#include "verdictd/config/loader.h"

namespace verdictd::config {

namespace {

template <typename S>
void PrintSection(std::ostream& out, std::string_view header, KeyTable<S> keys,
                  const S& section) {
  out << header << '\n';
  PrintKeys(out, keys, section);
  out << '\n';
}

}  // namespace

std::string ToToml(const Config& config) {
  std::ostringstream out;
  out << "# verdictd effective configuration (every key, defaults included).\n"
      << "# See docs/configuration.md for what each key means.\n\n";
  PrintSection(out, "[verdict]", VerdictKeys(), config.verdict);
  PrintSection(out, "[log]", LogKeys(), config.log);
  PrintSection(out, "[metrics]", MetricsKeys(), config.metrics);
  PrintSection(out, "[control]", ControlKeys(), config.control);
  PrintSection(out, "[process]", ProcessKeys(), config.process);
  for (const QueueRange& range : config.queues) {
    PrintSection(out, "[[queues]]", QueueKeys(), range);
  }
  PrintSection(out, "[extension_host]", ExtensionHostKeys(), config.extensions);
  for (const ExtensionEntry& entry : config.extensions.chain) {
    PrintSection(out, "[[extensions]]", ExtensionKeys(), entry);
  }

  toml::table rules;
  PrintRulesSection(config.rules, rules);
  if (!rules.empty()) out << toml::toml_formatter(rules) << '\n';
  return out.str();
}

}  // namespace verdictd::config
