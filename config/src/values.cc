#include "verdictd/config/values.h"

#include <array>
#include <charconv>

namespace verdictd::config {

namespace {
constexpr std::array<const char*, 5> kVerdictNames{"accept", "drop", "repeat", "queue", "stop"};
constexpr std::array<const char*, 6> kLogNames{"trace", "debug", "info", "warn", "error", "off"};
}  // namespace

std::optional<VerdictSetting> ParseVerdictSetting(std::string_view text) {
  for (std::size_t i = 0; i < kVerdictNames.size(); ++i) {
    const auto kind = static_cast<VerdictKind>(i);
    if (kind == VerdictKind::kQueue) continue;
    if (text == kVerdictNames[i]) return VerdictSetting{kind, 0};
  }
  constexpr std::string_view kQueuePrefix = "queue:";
  if (text.starts_with(kQueuePrefix)) {
    const std::string_view number = text.substr(kQueuePrefix.size());
    unsigned value = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (error == std::errc() && end == number.data() + number.size() && !number.empty() &&
        value <= 65535) {
      return VerdictSetting{VerdictKind::kQueue, static_cast<std::uint16_t>(value)};
    }
  }
  return std::nullopt;
}

std::string VerdictSettingText(const VerdictSetting& verdict) {
  if (verdict.kind == VerdictKind::kQueue) {
    return "queue:" + std::to_string(verdict.target_queue);
  }
  return kVerdictNames[static_cast<std::size_t>(verdict.kind)];
}

std::optional<CopyMode> ParseCopyMode(std::string_view text) {
  if (text == "packet") return CopyMode::kPacket;
  if (text == "meta") return CopyMode::kMeta;
  return std::nullopt;
}

const char* CopyModeText(CopyMode mode) noexcept {
  return mode == CopyMode::kMeta ? "meta" : "packet";
}

std::optional<LogLevel> ParseLogLevel(std::string_view text) {
  for (std::size_t i = 0; i < kLogNames.size(); ++i) {
    if (text == kLogNames[i]) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

const char* LogLevelText(LogLevel level) noexcept {
  const auto index = static_cast<std::size_t>(level);
  return index < kLogNames.size() ? kLogNames[index] : "info";
}

}  // namespace verdictd::config
