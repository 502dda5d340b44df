#include "verdictd/rules/daemon_hooks.h"

#include <iostream>
#include <memory>

#include "verdictd/rules/replay.h"

namespace verdictd::rules {

service::DeciderFactory MakeRuleDeciderFactory(const config::Config& config, RuleRuntime runtime) {
  if (config.rules.rules.empty() && config.rules.included_rules.empty()) return {};
  auto compiled = std::make_shared<std::shared_ptr<const RuleSet>>();
  return [compiled, runtime](const config::Config& cfg,
                             std::size_t worker) -> std::unique_ptr<service::Decider> {
    if (worker == 0 || *compiled == nullptr) {
      CompileResult result = CompileConfig(cfg);
      if (!result.diagnostics.empty()) throw CompileError(std::move(result.diagnostics));
      *compiled = std::move(result.rules);
    }
    return std::make_unique<RuleDecider>(*compiled, worker, runtime);
  };
}

service::Subcommand AddReplayCommand(CLI::App& app) {
  auto options = std::make_shared<ReplayOptions>();
  CLI::App* command = app.add_subcommand(
      "replay", "Run the rules of a configuration over a pcap: each packet's verdict and rule, then a summary");
  command->add_option("--config,-c", options->config_path, "configuration file (default: the embedded one)");
  command->add_flag("--summary", options->summary_only, "print only the summary");
  command->add_option("capture", options->pcap_path, "pcap file")->required();
  return {command, [options] { return RunReplay(*options, std::cout, std::cerr); }};
}

}  // namespace verdictd::rules
