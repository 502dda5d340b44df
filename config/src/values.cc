#include "verdictd/config/values.h"

#include <array>
#include <charconv>

#include "verdictd/base/verdict_kind.h"

namespace verdictd::config {

namespace {
constexpr std::array<const char*, 6> kLogNames{"trace", "debug", "info", "warn", "error", "off"};
}  // namespace

bool ParseUnsigned(std::string_view text, std::uint64_t& out) noexcept {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && end == text.data() + text.size();
}

std::optional<VerdictSetting> ParseVerdictSetting(std::string_view text) {
  const std::size_t colon = text.find(':');
  const std::optional<VerdictKind> kind = base::ParseVerdictKind(text.substr(0, colon));
  if (!kind) return std::nullopt;
  if (!base::VerdictKindInfoOf(*kind).has_target_queue) {
    if (colon != std::string_view::npos) return std::nullopt;
    return VerdictSetting{*kind, 0};
  }
  if (colon != std::string_view::npos) {
    const std::string_view number = text.substr(colon + 1);
    unsigned value = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (error == std::errc() && end == number.data() + number.size() && !number.empty() &&
        value <= 65535) {
      return VerdictSetting{*kind, static_cast<std::uint16_t>(value)};
    }
  }
  return std::nullopt;
}

std::string VerdictSettingText(const VerdictSetting& verdict) {
  const base::VerdictKindInfo& kind = base::VerdictKindInfoOf(verdict.kind);
  if (kind.has_target_queue) {
    return std::string(kind.name) + ":" + std::to_string(verdict.target_queue);
  }
  return kind.name;
}

std::string VerdictSettingChoices(bool quoted) {
  constexpr auto kWords = base::VerdictSettingWords();
  std::string choices;
  for (std::size_t i = 0; i < kWords.size(); ++i) {
    if (i != 0) choices += i + 1 == kWords.size() ? " or " : ", ";
    if (quoted) choices += '"';
    choices += kWords[i];
    if (quoted) choices += '"';
  }
  return choices;
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
