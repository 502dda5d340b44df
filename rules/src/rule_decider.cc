#include "verdictd/rules/rule_decider.h"

namespace verdictd::rules {

RuleRuntime MakeRuleRuntime(const config::Config& config) {
  RuleRuntime runtime;
  runtime.log = std::make_shared<RuleLog>(config.rules.engine.log_file, config.rules.engine.log_ring);
  runtime.log->Start();
  return runtime;
}

std::vector<std::unique_ptr<decider::Decider>> MakeRuleDeciders(const config::Config& config,
                                                                  std::size_t workers,
                                                                  const RuleRuntime& runtime) {
  std::vector<std::unique_ptr<decider::Decider>> deciders;
  if (config.rules.rules.empty() && config.rules.included_rules.empty()) return deciders;
  CompileResult compiled = CompileConfig(config);
  if (!compiled.diagnostics.empty()) throw CompileError(std::move(compiled.diagnostics));
  for (std::size_t worker = 0; worker < workers; ++worker) {
    deciders.push_back(std::make_unique<RuleDecider>(compiled.rules, worker, runtime));
  }
  return deciders;
}

std::vector<config::Diagnostic> CheckRules(const config::Config& config) {
  return CompileConfig(config).diagnostics;
}

}  // namespace verdictd::rules
