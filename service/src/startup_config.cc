#include "verdictd/service/startup_config.h"

#include <iostream>
#include <stdexcept>

#include "verdictd/config/loader.h"
#include "verdictd/rules/rule_decider.h"

namespace verdictd::service {

ConfigSource MakeConfigSource(const std::string& config_file, const ConfigFlags& flags,
                              std::function<void(config::Config&)> apply_flags) {
  ConfigSource source;
  source.file = config_file;
  source.overrides = flags.overrides;
  source.apply_flags = std::move(apply_flags);
  return source;
}

int RunConfigCommands(const ConfigFlags& flags, ConfigSource source) {
  if (flags.check_file.empty() && !flags.print) return -1;
  if (!flags.check_file.empty()) source.file = flags.check_file;
  config::LoadResult result = LoadEffectiveConfig(source);
  const std::string name = source.file.empty() ? "embedded defaults" : source.file;
  if (result.ok()) {
    // Compile the rules too: a bad regex, set file or interface is found here,
    // not at startup or reload.
    result.diagnostics = rules::CheckRules(result.config);
  }
  if (!result.ok()) {
    std::cerr << config::FormatDiagnostics(result.diagnostics) << name << ": "
              << result.diagnostics.size() << " error(s)\n";
    return 1;
  }
  if (flags.print) std::cout << config::ToToml(result.config);
  if (!flags.check_file.empty()) std::cerr << name << ": configuration is valid\n";
  return 0;
}

config::Config LoadStartupConfig(const ConfigSource& source) {
  config::LoadResult result = LoadEffectiveConfig(source);
  if (!result.ok()) {
    std::string message = "invalid configuration (" + std::to_string(result.diagnostics.size()) +
                          " error(s)); check it with --check-config:\n" +
                          config::FormatDiagnostics(result.diagnostics);
    message.pop_back();  // the last newline
    throw std::runtime_error(message);
  }
  return std::move(result.config);
}

}  // namespace verdictd::service
