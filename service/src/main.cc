// verdictd: the NFQUEUE verdict daemon. This file only wires the libraries
// together: parse flags, load the configuration, bind the queues, start the
// workers, wait for signals, drain and exit. Each part owned elsewhere is one
// call into its own file; "Hook" comments mark where they plug in.
//
// Exit codes: 0 clean stop, 1 runtime error (a worker gave up),
// 2 usage or startup error (bad flags or config, no CAP_NET_ADMIN, queue busy).
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/capabilities.h"
#include "verdictd/service/cli.h"
#include "verdictd/service/logging.h"
#include "verdictd/service/policy_exchange.h"
#include "verdictd/service/service.h"
#include "verdictd/service/signals.h"

namespace {

using namespace verdictd;

// Hook (rules): return the rule engine's DeciderFactory here. An empty
// factory gives every worker the configured default verdict.
service::DeciderFactory MakeDeciderFactory(const config::Config& /*config*/) { return {}; }

// Hook (config): load options.config_file (when given) over the embedded
// defaults, then apply the flags. Throws std::exception with a one-line message.
config::Config LoadConfiguration(const service::RunOptions& options) {
  config::Config config;  // default-constructed = the embedded default configuration
  service::ApplyRunOptions(options, config);
  return config;
}

int RunDaemon(const service::RunOptions& options) {
  service::SetupLogging(config::LogLevel::kInfo);
  config::Config config;
  std::vector<service::QueuePlan> plan;
  try {
    config = LoadConfiguration(options);
    service::SetLogLevel(config.log.level);
    plan = service::PlanQueues(config, service::AllowedCpus());
    service::RequireNetAdmin();
    // Before any thread exists: capabilities are per thread.
    service::DropCapabilities(config.process.user);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return service::kExitUsage;
  }

  // Blocked before any thread starts, so every thread inherits the mask and
  // the signals wait for the loop below (no work in signal handlers).
  service::SignalWaiter signals({SIGTERM, SIGINT, SIGHUP});
  const service::DeciderFactory factory = MakeDeciderFactory(config);
  std::unique_ptr<service::PolicyExchange> exchange;  // outlives the workers
  service::Service service(plan, config.verdict);
  try {
    service.Open();
    exchange = std::make_unique<service::PolicyExchange>(
        service::BuildPolicy(config, plan.size(), 1, factory), plan.size());
    // Hook (metrics): start the metrics server over service.counters() here.
    // Hook (config): start the control socket here.
    service.Start(*exchange, [] { kill(getpid(), SIGTERM); });
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return service::kExitUsage;
  }
  spdlog::info("running {} worker(s) on queues {}..{}, default verdict {}", plan.size(),
               plan.front().queue.queue_num, plan.back().queue.queue_num,
               service::VerdictSettingName(config.verdict.default_verdict));

  for (;;) {
    const int signal = signals.Wait(1000);
    if (signal == 0) {
      exchange->Reclaim();  // frees policies no worker reads any more
      continue;
    }
    if (signal == SIGHUP) {
      // Hook (config): reload the configuration and publish a new policy.
      spdlog::info("SIGHUP: no configuration file to reload");
      continue;
    }
    spdlog::info("{}: stopping: draining queued packets", strsignal(signal));
    break;
  }
  service.Stop();
  for (std::size_t i = 0; i < service.size(); ++i) {
    spdlog::info("{}", service::SummarizeCounters(plan[i].queue.queue_num, service.counters()[i]));
  }
  if (service.failed()) {
    spdlog::error("stopped after a worker failed: {}", service.failure());
    return service::kExitRuntimeError;
  }
  spdlog::info("stopped cleanly");
  return service::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"verdictd: gives verdicts to packets queued by NFQUEUE firewall rules", "verdictd"};
  app.set_version_flag("--version", "verdictd 0.1.0");
  service::RunOptions options;
  service::AddRunFlags(app, options);
  // Hook (config): the --config flag (fills options.config_file).
  std::vector<service::Subcommand> subcommands;
  // Hook (rules): subcommands.push_back(AddReplayCommand(app));
  // Hook (config): subcommands.push_back(AddCtlCommand(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? service::kExitOk : service::kExitUsage;
  }
  for (const service::Subcommand& subcommand : subcommands) {
    if (subcommand.command != nullptr && subcommand.command->parsed()) return subcommand.run();
  }
  return RunDaemon(options);
}
