#include "verdictd/service/rule_hooks.h"

#include <iostream>
#include <memory>
#include <mutex>

#include "verdictd/rules/replay.h"

#include <spdlog/spdlog.h>

namespace verdictd::service {

using rules::CompileConfig;
using rules::CompileError;
using rules::CompileResult;
using rules::ReplayOptions;
using rules::RuleDecider;
using rules::RuleLog;
using rules::RuleRuntime;
using rules::RuleSet;
using rules::RuleStats;

std::shared_ptr<RuleStats> DaemonRuleStats() {
  static const std::shared_ptr<RuleStats> stats = std::make_shared<RuleStats>();
  return stats;
}

namespace {
// Opened on first use, kept for the life of the process (a reload keeps it).
std::shared_ptr<RuleLog> DaemonRuleLog(const config::Config& config) {
  static std::mutex mutex;
  static std::shared_ptr<RuleLog> log;
  std::lock_guard lock(mutex);
  if (!log) {
    log = std::make_shared<RuleLog>(config.rules.engine.log_file, config.rules.engine.log_ring);
    log->Start();
  }
  return log;
}
}  // namespace

DeciderFactory MakeRuleDeciderFactory(const config::Config& config,
                                               DeciderFactory inspector) {
  if (config.rules.rules.empty() && config.rules.included_rules.empty()) return {};
  struct Shared {
    std::shared_ptr<const RuleSet> rules;
    RuleRuntime runtime;
  };
  auto shared = std::make_shared<Shared>();
  return [shared, inspector](const config::Config& cfg,
                             std::size_t worker) -> std::unique_ptr<Decider> {
    if (worker == 0 || shared->rules == nullptr) {
      CompileResult result = CompileConfig(cfg);
      if (!result.diagnostics.empty()) throw CompileError(std::move(result.diagnostics));
      shared->rules = std::move(result.rules);
      shared->runtime.stats = DaemonRuleStats();
      shared->runtime.log = DaemonRuleLog(cfg);
    }
    return std::make_unique<RuleDecider>(shared->rules, worker, shared->runtime,
                                         inspector ? inspector(cfg, worker) : nullptr);
  };
}

void LogRuleSummary() {
  const auto stats = DaemonRuleStats();
  for (const auto& [name, totals] : stats->RuleTotals()) {
    spdlog::info("rule {}: hits {}, bytes {}", name, totals.hits, totals.bytes);
  }
  std::string events;
  for (const auto& [name, count] : stats->EventTotals()) {
    if (count != 0) events += (events.empty() ? "" : ", ") + name + " " + std::to_string(count);
  }
  if (!events.empty()) spdlog::info("rule engine: {}", events);
}

Subcommand AddReplayCommand(CLI::App& app) {
  auto options = std::make_shared<ReplayOptions>();
  CLI::App* command = app.add_subcommand(
      "replay", "Run the rules of a configuration over a pcap: each packet's verdict and rule, then a summary");
  command->add_option("--config,-c", options->config_path, "configuration file (default: the embedded one)");
  command->add_flag("--summary", options->summary_only, "print only the summary");
  command->add_option("capture", options->pcap_path, "pcap file")->required();
  return {command, [options] { return rules::RunReplay(*options, std::cout, std::cerr); }};
}

}  // namespace verdictd::service
