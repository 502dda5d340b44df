// What main.cc calls to plug the rule engine into the daemon: the decider
// factory BuildPolicy uses (startup and every reload) and the `replay`
// subcommand. Control plane only.
#pragma once

#include <CLI/CLI.hpp>

#include "verdictd/config/config.h"
#include "verdictd/rules/rule_decider.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/cli.h"

namespace verdictd::rules {

// A factory for one policy build: the rules of `config` are compiled once (on
// the call for worker 0) and shared by every worker's RuleDecider. A
// configuration without rules gives nullptr (the default verdict). Throws
// CompileError (a std::runtime_error listing file:line and rule name of
// every problem): startup fails, or the reload changes nothing.
service::DeciderFactory MakeRuleDeciderFactory(const config::Config& config, RuleRuntime runtime);

// `verdictd replay [--config FILE] [--summary] capture.pcap`.
service::Subcommand AddReplayCommand(CLI::App& app);

}  // namespace verdictd::rules
