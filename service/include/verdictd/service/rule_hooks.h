// The daemon's wiring of the rule engine (verdictd::rules): the decider
// factory BuildPolicy uses (startup and every reload), the process-wide rule
// metrics and log, and the `replay` subcommand. It lives in the service so
// that the rule engine knows nothing of the daemon. Control plane only.
#pragma once

#include <CLI/CLI.hpp>

#include "verdictd/config/config.h"
#include "verdictd/rules/rule_decider.h"
#include "verdictd/rules/rule_stats.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/cli.h"

namespace verdictd::service {

// A factory for one policy build: the rules of `config` are compiled once (on
// the call for worker 0) and shared by every worker's RuleDecider. A
// configuration without rules gives an empty factory (the default verdict).
// The factory throws CompileError (a std::runtime_error listing file:line and
// rule name of every problem): startup fails, or the reload changes nothing.
// Deciders count into DaemonRuleStats() and log through one process-wide rule
// log opened on first use from rule_engine.log_file (std::runtime_error when
// it cannot be opened).
// `inspector` (optional) makes each worker's decider for packets that match
// an "inspect" rule (the extension chain).
DeciderFactory MakeRuleDeciderFactory(const config::Config& config,
                                               DeciderFactory inspector = {});

// The per-rule metrics of the daemon's deciders: register with the metrics
// server (a prometheus::Collectable). Never throws.
std::shared_ptr<rules::RuleStats> DaemonRuleStats();

// Logs one line per rule ("rule NAME: hits N, bytes M") and the engine's
// events, for the summary verdictd prints when it stops.
void LogRuleSummary();

// `verdictd replay [--config FILE] [--summary] capture.pcap`.
Subcommand AddReplayCommand(CLI::App& app);

}  // namespace verdictd::service
