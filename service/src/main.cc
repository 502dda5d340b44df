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
#include <string>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/extensions/commands.h"
#include "verdictd/extensions/host.h"
#include "verdictd/metrics/collectors.h"
#include "verdictd/rules/daemon_hooks.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/capabilities.h"
#include "verdictd/service/cli.h"
#include "verdictd/service/control.h"
#include "verdictd/service/control_cli.h"
#include "verdictd/service/daemon_metrics.h"
#include "verdictd/service/logging.h"
#include "verdictd/service/policy_exchange.h"
#include "verdictd/service/reload.h"
#include "verdictd/service/service.h"
#include "verdictd/service/signals.h"

namespace {

using namespace verdictd;

// Worker slots kept for queues a reload adds (64 bytes each).
constexpr std::size_t kMaxLiveWorkers = 1024;

// Hook (rules): the rule engine's deciders (service/rules/daemon_hooks.h).
// Hook (extensions): without rules, the extension chain decides every packet
// (an empty chain: the default verdict); with rules, the packets of rules
// whose action is "inspect". An extension that fails to
// load is logged with its file and left out; the service keeps running.
service::DeciderFactory MakeDeciderFactory(const config::Config& config,
                                           extensions::ExtensionHost& host) {
  std::vector<std::string> errors;
  std::shared_ptr<const extensions::ChainPlan> plan = host.Prepare(config.extensions, errors);
  for (const std::string& error : errors) spdlog::error("{}", error);
  service::DeciderFactory chain;
  if (!plan->links.empty()) {
    chain = [&host, plan](const config::Config&, std::size_t worker) {
      return host.MakeChain(plan, worker);
    };
  }
  // With rules, packets reach the chain through rules with action "inspect".
  if (service::DeciderFactory rules = rules::MakeRuleDeciderFactory(config, chain)) return rules;
  return chain;
}

// Config: the embedded defaults, then --config FILE, then --set, then the
// named flags. Kept for reloads, which apply the same flags again.
service::ConfigSource MakeConfigSource(const service::RunOptions& options,
                                       const service::ConfigFlags& flags) {
  return service::MakeConfigSource(options.config_file, flags, [options](config::Config& c) {
    service::ApplyRunOptions(options, c);
  });
}

// Throws std::exception listing every problem of the configuration.
config::Config LoadConfiguration(const service::ConfigSource& source) {
  return service::LoadStartupConfig(source);
}

int RunDaemon(const service::ConfigSource& source) {
  service::SetupLogging(config::LogLevel::kInfo);
  config::Config config;
  std::vector<service::QueuePlan> plan;
  std::vector<int> cpus;
  // (metrics) Stopped explicitly below, before the counters it reads go.
  std::unique_ptr<service::DaemonMetrics> metrics_endpoint;
  try {
    config = LoadConfiguration(source);
    service::SetLogLevel(config.log.level);
    cpus = service::AllowedCpus();
    plan = service::PlanQueues(config, cpus);
    service::RequireNetAdmin();
    // (metrics) Opens the root-only kernel queue table before privileges go.
    metrics_endpoint = std::make_unique<service::DaemonMetrics>(config.metrics);
    // Before any thread exists: capabilities are per thread.
    service::DropCapabilities(config.process.user);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return service::kExitUsage;
  }

  // Blocked before any thread starts, so every thread inherits the mask and
  // the signals wait for the loop below (no work in signal handlers).
  service::SignalWaiter signals({SIGTERM, SIGINT, SIGHUP});
  // Extensions: one host per process; it outlives every policy and worker.
  auto host = std::make_shared<extensions::ExtensionHost>(
      config.extensions, extensions::HostOptions{kMaxLiveWorkers, 0});
  const service::DeciderFactory factory = MakeDeciderFactory(config, *host);
  std::unique_ptr<service::PolicyExchange> exchange;  // outlives the workers
  service::Service service(plan, config.verdict, cpus);
  metrics::ServiceCounters service_counters;  // reload and control write, the scrape reads
  std::unique_ptr<service::Reloader> reloader;
  std::unique_ptr<service::ControlServer> control;
  try {
    service.Open();
    // Room for workers of queues a reload adds later.
    exchange = std::make_unique<service::PolicyExchange>(
        service::BuildPolicy(config, plan.size(), 1, factory, host), plan.size(), kMaxLiveWorkers);
    // (metrics) Serves /metrics; a busy port throws (one line, exit 2).
    metrics_endpoint->Start(service, service_counters);
    if (auto* server = metrics_endpoint->server()) {  // Hook (rules): per-rule counters
      server->AddCollectable(rules::DaemonRuleStats());
      server->AddCollectable(host->Collector());  // Hook (extensions): per-extension metrics
    }
    // Config: live reload (SIGHUP, `verdictd ctl reload`) and the control socket.
    reloader = std::make_unique<service::Reloader>(
        source, config, *exchange,
        [&service, host](const config::Config& next, std::uint64_t generation) {
          return service::BuildPolicy(next, service.slot_count(), generation,
                                      MakeDeciderFactory(next, *host), host);
        },
        service_counters, [](const config::Config& next) { service::SetLogLevel(next.log.level); },
        &service);  // [[queues]] changes: workers added and removed live
    if (config.control.enabled) {
      control = service::StartControlServer(
          config.control.socket,
          service::MakeControlHandler(*reloader, service_counters,
                                      [&service] {
                                        std::string text;
                                        service.VisitCounters([&](auto queues) {
                                          text = service::WorkerCountersStatus(queues);
                                        });
                                        return text;
                                      },
                                      [&reloader, host](std::string_view request) {
                                        // Hook (extensions): ctl ext ...
                                        return extensions::RunExtCommand(
                                            *host, request, [&reloader]() -> std::string {
                                              const service::ReloadResult result =
                                                  reloader->Reload("control socket: ext");
                                              return result.applied ? "" : result.message;
                                            });
                                      }),
          service_counters);
    }
    service.Start(*exchange, [] { kill(getpid(), SIGTERM); });
  } catch (const std::exception& e) {
    metrics_endpoint->Stop();  // before the service's counters go
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
      try {
        reloader->Reload("SIGHUP");  // logs and counts the outcome itself
      } catch (const std::exception& e) {  // out of memory: keep serving packets
        spdlog::error("reload (SIGHUP) failed, the running configuration is unchanged: {}",
                      e.what());
      }
      continue;
    }
    spdlog::info("{}: stopping: draining queued packets", strsignal(signal));
    break;
  }
  control.reset();  // no reload may change the queues while they stop
  service.Stop();
  metrics_endpoint->Stop();  // (metrics) before the service's counters go
  service.VisitCounters([](auto queues) {
    for (const service::QueueCountersRef& queue : queues) {
      spdlog::info("{}", service::SummarizeCounters(queue.queue, *queue.counters));
    }
  });
  rules::LogRuleSummary();  // Hook (rules): per-rule hits and bytes
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
  // The version is the project()'s, the same string verdictd_build_info and the
  // package carry.
  app.set_version_flag("--version", std::string("verdictd ") + metrics::BuildVersion());
  service::RunOptions options;
  service::AddRunFlags(app, options);
  service::ConfigFlags config_flags;  // --config, --set, --check-config, --print-config
  service::AddConfigFlags(app, options.config_file, config_flags);
  std::vector<service::Subcommand> subcommands;
  subcommands.push_back(rules::AddReplayCommand(app));  // Hook (rules): verdictd replay
  subcommands.push_back(service::AddCtlCommand(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? service::kExitOk : service::kExitUsage;
  }
  for (const service::Subcommand& subcommand : subcommands) {
    if (subcommand.command != nullptr && subcommand.command->parsed()) return subcommand.run();
  }
  const service::ConfigSource source = MakeConfigSource(options, config_flags);
  // --check-config / --print-config answer and exit; they never touch the kernel.
  if (const int code = service::RunConfigCommands(config_flags, source); code >= 0) return code;
  return RunDaemon(source);
}
