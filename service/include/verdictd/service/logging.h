// The daemon's log: spdlog to stderr (journald adds its own timestamps under
// systemd). Startup and control plane only: workers never log per packet.
#pragma once

#include <string_view>

#include "verdictd/config/config.h"

namespace verdictd::service {

// Installs the stderr logger as spdlog's default, at `level`. Idempotent.
void SetupLogging(config::LogLevel level);
void SetLogLevel(config::LogLevel level);

// "trace", "debug", "info", "warn", "error", "off"; throws std::invalid_argument otherwise.
config::LogLevel ParseLogLevel(std::string_view name);
const char* LogLevelName(config::LogLevel level) noexcept;

}  // namespace verdictd::service
