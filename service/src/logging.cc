#include "verdictd/service/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <stdexcept>
#include <string>

namespace verdictd::service {
namespace {

constexpr std::array<const char*, 6> kNames = {"trace", "debug", "info", "warn", "error", "off"};

spdlog::level::level_enum ToSpdlog(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::kTrace: return spdlog::level::trace;
    case config::LogLevel::kDebug: return spdlog::level::debug;
    case config::LogLevel::kInfo: return spdlog::level::info;
    case config::LogLevel::kWarn: return spdlog::level::warn;
    case config::LogLevel::kError: return spdlog::level::err;
    case config::LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

void SetupLogging(config::LogLevel level) {
  static const bool installed = [] {
    auto logger = std::make_shared<spdlog::logger>(
        "verdictd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e verdictd %l: %v");
    logger->flush_on(spdlog::level::trace);  // a daemon's log must not sit in a buffer
    spdlog::set_default_logger(std::move(logger));
    return true;
  }();
  (void)installed;
  SetLogLevel(level);
}

void SetLogLevel(config::LogLevel level) { spdlog::set_level(ToSpdlog(level)); }

config::LogLevel ParseLogLevel(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (name == kNames[i]) return static_cast<config::LogLevel>(i);
  }
  throw std::invalid_argument("unknown log level '" + std::string(name) +
                              "'; use trace, debug, info, warn, error or off");
}

const char* LogLevelName(config::LogLevel level) noexcept {
  const auto i = static_cast<std::size_t>(level);
  return i < kNames.size() ? kNames[i] : "?";
}

}  // namespace verdictd::service
