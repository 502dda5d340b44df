// The startup configuration: where it comes from (--config, --set, the
// run-mode flags), the one-shot --check-config and --print-config, and
// loading it. The flags themselves are added by AddConfigFlags (cli.h).
//
// Startup only; functions throw std::runtime_error (startup) or return exit
// codes (the one-shot commands).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/service/reload.h"

namespace verdictd::service {

struct ConfigFlags {
  std::string check_file;              // --check-config FILE
  bool print = false;                  // --print-config
  std::vector<std::string> overrides;  // --set KEY=VALUE (repeatable)
};

// The source of the effective configuration: `config_file` (or the defaults),
// then --set, then the named flags.
ConfigSource MakeConfigSource(const std::string& config_file, const ConfigFlags& flags,
                              std::function<void(config::Config&)> apply_flags);

// Runs --check-config / --print-config when asked: returns their exit code
// (0 valid, 1 invalid), or -1 when neither was given and the daemon should run.
// Never touches the kernel.
int RunConfigCommands(const ConfigFlags& flags, ConfigSource source);

// Loads the startup configuration; throws std::runtime_error whose message
// lists every problem (one per line) when it is invalid.
config::Config LoadStartupConfig(const ConfigSource& source);

}  // namespace verdictd::service
