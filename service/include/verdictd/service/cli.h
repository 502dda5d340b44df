// Command line of `verdictd` (run mode) with CLI11.
//
// Flags override the configuration (defaults, then the config file, then the
// flags). Parsing runs at startup only; value errors surface as
// CLI::ValidationError (exit code 2 via RunCli's caller). The helpers
// ParseVerdict/ParseQueueRange/ParseCpuList throw std::invalid_argument with
// a one-line message.
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/service/startup_config.h"

namespace verdictd::service {

// Process exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntimeError = 1;
inline constexpr int kExitUsage = 2;  // bad flags, bad config, cannot start

// What the run-mode flags asked for; unset fields keep the configuration's value.
struct RunOptions {
  std::string config_file;  // --config (loaded by the configuration layer)

  std::optional<std::uint16_t> queue_first;
  std::optional<std::uint16_t> queue_count;
  std::optional<std::vector<int>> cpus;
  std::optional<bool> fail_open;
  std::optional<bool> gso;
  std::optional<bool> conntrack;
  std::optional<bool> uid_gid;
  std::optional<bool> secctx;
  std::optional<config::CopyMode> copy_mode;
  std::optional<std::uint32_t> copy_range;
  std::optional<std::uint32_t> queue_maxlen;
  std::optional<std::size_t> rcvbuf;
  std::optional<std::size_t> batch_size;
  std::optional<std::uint32_t> flush_us;
  std::optional<std::uint32_t> busy_poll_us;
  std::optional<std::uint32_t> latency_budget_us;
  std::optional<config::VerdictSetting> default_verdict;
  std::optional<config::VerdictSetting> unparseable_verdict;
  std::optional<config::LogLevel> log_level;
};

// Adds the run-mode flags to `app`; parsed values land in `options`.
void AddRunFlags(CLI::App& app, RunOptions& options);

// Applies the flags to `config`. Queue flags apply to every queue range;
// --queues/--queue-first/--queue-count/--cpus need a single range (they
// replace the first and drop the rest when --queues is given). Throws
// std::invalid_argument when the combination cannot be applied.
void ApplyRunOptions(const RunOptions& options, config::Config& config);

// "accept", "drop", "repeat", "stop", "queue:N".
// (config::VerdictSettingText is the way back.)
config::VerdictSetting ParseVerdict(std::string_view text);
// "A:B" (inclusive) or "A" -> {first, count}.
std::pair<std::uint16_t, std::uint16_t> ParseQueueRange(std::string_view text);
// "0,2-3" -> {0, 2, 3}.
std::vector<int> ParseCpuList(std::string_view text);
// "8M", "65536", "1G" -> bytes.
std::size_t ParseByteSize(std::string_view text);

// A subcommand (`verdictd replay`, `verdictd ctl`): its CLI11 app and what
// runs when it was chosen (returns the exit code).
struct Subcommand {
  CLI::App* command = nullptr;
  std::function<int()> run;
};

// Adds --config (into `config_file`), --set, --check-config and --print-config.
void AddConfigFlags(CLI::App& app, std::string& config_file, ConfigFlags& flags);

}  // namespace verdictd::service
