// Text forms of the enumerated settings, as written in the file and on the
// command line: verdicts ("accept", "drop", "repeat", "stop", "queue:N"),
// copy modes ("packet", "meta") and log levels ("trace" ... "off").
// Pure functions, no allocation except the returned strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "verdictd/config/config.h"

namespace verdictd::config {

// The one number syntax of rule values, extension parameters and
// `ctl ext group` masks: decimal or 0x hex, the whole text (no sign, no
// spaces, no octal: "010" is ten). False when it is not one, or overflows.
bool ParseUnsigned(std::string_view text, std::uint64_t& out) noexcept;

std::optional<VerdictSetting> ParseVerdictSetting(std::string_view text);
std::string VerdictSettingText(const VerdictSetting& verdict);
// The forms a verdict setting may take, for messages and help:
// accept, drop, repeat, stop or queue:N (each in double quotes if `quoted`).
std::string VerdictSettingChoices(bool quoted);

std::optional<CopyMode> ParseCopyMode(std::string_view text);
const char* CopyModeText(CopyMode mode) noexcept;

std::optional<LogLevel> ParseLogLevel(std::string_view text);
const char* LogLevelText(LogLevel level) noexcept;

// Checks of the extension keys (also used by `verdictd ctl ext add`); each
// returns what was expected, or "" when `value` is fine.
std::string DirectoryProblem(std::string_view value);
std::string ExtensionNameProblem(std::string_view value);
std::string ExtensionFileProblem(std::string_view value);
std::string ParametersProblem(std::string_view value);

}  // namespace verdictd::config
