// verdictd: the NFQUEUE verdict daemon. This file only wires the libraries
// together: parse flags, load the configuration, bind the queues, start the
// workers, wait for signals, drain and exit. Each part owned elsewhere is one
// call into its own file; "Hook" comments mark where they plug in.
//
// Exit codes: 0 clean stop, 1 runtime error (a worker gave up),
// 2 usage or startup error (bad flags or config, no CAP_NET_ADMIN, queue busy).
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/config/values.h"
#include "verdictd/extensions/commands.h"
#include "verdictd/extensions/host.h"
#include "verdictd/metrics/collectors.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/capabilities.h"
#include "verdictd/service/cli.h"
#include "verdictd/service/control.h"
#include "verdictd/service/startup_config.h"
#include "verdictd/service/control_cli.h"
#include "verdictd/service/daemon_metrics.h"
#include "verdictd/service/handover.h"
#include "verdictd/service/logging.h"
#include "verdictd/service/notify.h"
#include "verdictd/service/policy_exchange.h"
#include "verdictd/service/queue_log.h"
#include "verdictd/service/queue_status.h"
#include "verdictd/service/reload.h"
#include "verdictd/service/rule_hooks.h"
#include "verdictd/service/service.h"
#include "verdictd/service/signals.h"
#include "verdictd/service/watchdog.h"

namespace {

using namespace verdictd;

// Worker slots kept for queues a reload adds (64 bytes each).
constexpr std::size_t kMaxLiveWorkers = 1024;

// Hook (rules): the rule engine's deciders (service/rule_hooks.h).
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
  if (service::DeciderFactory rules = service::MakeRuleDeciderFactory(config, chain)) return rules;
  return chain;
}

// Without a watchdog, a worker still counts as stalled after this long (for
// the log and verdictd_worker_stalled); with one, after half its interval.
constexpr std::uint64_t kDefaultStallBoundNs = 5'000'000'000;

// Hook (operations): where the kernel lacks nf_conntrack_netlink, rules
// with bypass_via = "connmark" bypass through the packet mark (one warning
// per process); the gauge says how many do. `config` is what the policy
// gets; the running configuration (reload's comparisons) stays as written.
std::atomic<bool> g_conntrack_supported{true};
std::atomic<bool> g_fallback_warned{false};

config::Config AdaptToKernel(const config::Config& config, metrics::ServiceCounters& counters) {
  config::Config adapted = config;
  std::vector<std::string> changed;
  if (!g_conntrack_supported.load()) changed = service::FallBackToMarkBypass(adapted);
  counters.connmark_bypass_fallback_rules.store(static_cast<std::uint32_t>(changed.size()));
  if (!changed.empty() && !g_fallback_warned.exchange(true)) {
    spdlog::warn("{}", service::MarkBypassFallbackWarning(adapted, changed));
  }
  return adapted;
}

// The STATUS= line: queues, workers, generation, verdicts, stalled queues.
std::string StatusLine(const service::Service& service, std::uint64_t generation,
                       const std::vector<std::uint16_t>& stalled) {
  std::string line;
  service.VisitCounters([&](std::span<const service::QueueCountersRef> queues) {
    std::vector<std::uint16_t> numbers;
    std::uint64_t verdicts = 0;
    for (const service::QueueCountersRef& queue : queues) {
      numbers.push_back(queue.queue);
      for (const auto& v : queue.counters->verdicts) verdicts += v.value();
    }
    line = service::QueueSummary(numbers, generation, verdicts, stalled);
  });
  return line;
}

// Test builds only (VERDICTD_TEST_HOOKS, the verdictd-test-hooks binary):
//  - "debug stall QUEUE MS" pauses that queue's worker once, so the watchdog
//    tests can stall a worker deterministically;
//  - "debug break QUEUE" puts /dev/null in place of that queue's socket
//    descriptor (dup2), so every receive and send of its worker fails
//    (ENOTSOCK) as on a socket gone bad, and the worker gives up after its
//    errors in a row. The socket itself stays open (and the queue bound)
//    until the process ends: the queue nobody reads that the daemon's exit
//    must end.
// The release binary has no such commands.
#ifdef VERDICTD_TEST_HOOKS
std::vector<int> g_broken_sockets;  // kept open, so the queues stay bound

std::string BreakQueueSocket(unsigned queue, service::Service& service) {
  for (const service::HandedQueue& socket : service.Sockets()) {
    if (socket.queue != queue) continue;
    const int kept = ::fcntl(socket.fd, F_DUPFD_CLOEXEC, 0);
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (kept < 0 || null < 0 || ::dup3(null, socket.fd, O_CLOEXEC) < 0) {
      const std::string why = std::strerror(errno);
      if (kept >= 0) ::close(kept);
      if (null >= 0) ::close(null);
      return "error: cannot break the socket of queue " + std::to_string(queue) + ": " + why +
             "\n";
    }
    ::close(null);
    g_broken_sockets.push_back(kept);
    spdlog::warn("test hook: the socket descriptor of queue {} now reads /dev/null", queue);
    return "ok broke the socket of queue " + std::to_string(queue) + "\n";
  }
  return "error: queue " + std::to_string(queue) + " is not running\n";
}
#endif

service::ControlServer::Handler WithTestHooks(service::ControlServer::Handler handler,
                                              service::Service& service) {
#ifdef VERDICTD_TEST_HOOKS
  return [inner = std::move(handler), &service](std::string_view command) -> std::string {
    constexpr std::string_view kStall = "debug stall ";
    constexpr std::string_view kBreak = "debug break ";
    unsigned queue = 0, ms = 0;
    if (command.starts_with(kBreak)) {
      const std::string_view q = command.substr(kBreak.size());
      if (std::from_chars(q.data(), q.data() + q.size(), queue).ptr != q.data() + q.size() ||
          q.empty() || queue > 65535) {
        return "error: usage: debug break QUEUE\n";
      }
      return BreakQueueSocket(queue, service);
    }
    if (!command.starts_with(kStall)) return inner(command);
    std::string_view rest = command.substr(kStall.size());
    const auto space = rest.find(' ');
    const std::string_view q = rest.substr(0, space);
    const std::string_view m = space == std::string_view::npos ? "" : rest.substr(space + 1);
    if (std::from_chars(q.data(), q.data() + q.size(), queue).ec != std::errc() ||
        std::from_chars(m.data(), m.data() + m.size(), ms).ec != std::errc() || queue > 65535) {
      return "error: usage: debug stall QUEUE MS\n";
    }
    if (!service.RequestTestStall(static_cast<std::uint16_t>(queue), ms)) {
      return "error: queue " + std::to_string(queue) + " is not running\n";
    }
    spdlog::warn("test hook: stalling the worker of queue {} for {} ms", queue, ms);
    return "ok stalling queue " + std::to_string(queue) + " for " + std::to_string(ms) + " ms\n";
  };
#else
  (void)service;
  return handler;
#endif
}

// Upgrade (`verdictd ctl upgrade [--binary PATH]`): the new process is
// started the way this one was, from this binary's path as started unless
// told otherwise. The control thread starts it and waits for its "ready"
// (configuration loaded); the main loop, woken by SIGUSR2, hands over.
constexpr int kUpgradeTimeoutMs = 20'000;
std::vector<std::string> g_argv;
std::string g_self_exe;
std::mutex g_successor_mutex;
service::Successor g_successor;  // pid -1: no upgrade under way

void RememberInvocation(int argc, char** argv) {
  g_argv.assign(argv, argv + argc);
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  g_self_exe = n > 0 ? std::string(path, static_cast<std::size_t>(n)) : g_argv.front();
}

std::vector<std::uint16_t> QueueNumbers(const std::vector<service::QueuePlan>& plan) {
  std::vector<std::uint16_t> queues;
  for (const service::QueuePlan& entry : plan) queues.push_back(entry.queue.queue_num);
  std::sort(queues.begin(), queues.end());
  return queues;
}

// `ctl upgrade [--binary PATH]` (the control thread): starts the successor
// and wakes the main loop, which hands over.
std::string Upgrade(const std::string& requested, service::Service& service) {
  const std::string binary = requested.empty() ? g_self_exe : requested;
  {
    std::lock_guard lock(g_successor_mutex);
    if (g_successor.pid >= 0) return "error: an upgrade is already under way\n";
  }
  spdlog::info("upgrade: starting {}", binary);
  service::Successor successor;
  const std::string why = service::StartSuccessor(binary, g_argv, QueueNumbers(service.plan()),
                                                  kUpgradeTimeoutMs, successor);
  if (!why.empty()) {
    spdlog::error("upgrade to {} refused, this process keeps serving: {}", binary, why);
    return "error: upgrade refused: " + why + "; the running verdictd keeps serving\n";
  }
  {
    std::lock_guard lock(g_successor_mutex);
    g_successor = successor;
  }
  kill(getpid(), SIGUSR2);  // the main loop hands over
  return "ok new process " + std::to_string(successor.pid) + " (" + binary +
         ") loaded its configuration; handing the queues over\n";
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

int RunDaemon(const service::ConfigSource& source, int handover) {
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
    std::string cpu_warnings;  // (operations) fanout CPUs this process may not use
    plan = service::PlanQueues(config, cpus, &cpu_warnings);
    if (!cpu_warnings.empty()) spdlog::warn("CPU mapping: {}", cpu_warnings);
    service::RequireNetAdmin();
    // (metrics) Opens the root-only kernel queue table before privileges go.
    metrics_endpoint = std::make_unique<service::DaemonMetrics>(config.metrics);
    // Before any thread exists: capabilities are per thread.
    service::DropCapabilities(config.process.user);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    if (handover >= 0) service::SendLine(handover, std::string("error ") + e.what() + "\n");
    return service::kExitUsage;
  }

  // Blocked before any thread starts, so every thread inherits the mask and
  // the signals wait for the loop below (no work in signal handlers).
  service::SignalWaiter signals({SIGTERM, SIGINT, SIGHUP, SIGUSR2});
  // (operations) systemd: NOTIFY_SOCKET / WATCHDOG_USEC; inert without them.
  service::Notifier notifier;
  // Extensions: one host per process; it outlives every policy and worker.
  auto host = std::make_shared<extensions::ExtensionHost>(
      config.extensions, extensions::HostOptions{kMaxLiveWorkers, 0});
  const service::DeciderFactory factory = MakeDeciderFactory(config, *host);
  std::unique_ptr<service::PolicyExchange> exchange;  // outlives the workers
  service::Service service(plan, config.verdict, cpus);
  metrics::ServiceCounters service_counters;  // reload and control write, the scrape reads
  std::unique_ptr<service::Reloader> reloader;
  std::unique_ptr<service::ControlServer> control;
  service::HandOverManifest inherited;  // upgrade: what the old process handed over
  try {
    if (handover >= 0) {
      // Upgrade: the configuration is loaded and checked; only now may the
      // old process stop. Its queues must be this configuration's.
      service::CheckHello(handover, QueueNumbers(plan), kUpgradeTimeoutMs);
      service::SendLine(handover, "ready\n");
      inherited = service::ReceiveManifest(handover, kUpgradeTimeoutMs);
      service.Adopt(inherited.queues);
    } else {
      // systemd's file descriptor store gives the sockets of the previous
      // run back (restart): still bound, nothing waiting in them is lost.
      std::string notes;
      inherited = service::ListenFdsManifest(notes);
      if (!notes.empty()) spdlog::warn("systemd file descriptor store: {}", notes);
      if (!inherited.queues.empty()) {
        spdlog::info("systemd file descriptor store: taking over {} bound queue socket(s)",
                     inherited.queues.size());
        service.Adopt(inherited.queues, /*bind_missing=*/true);
      } else {
        service.Open();
      }
    }
    // (operations) What the bind probe found decides the connmark fallback.
    g_conntrack_supported = service.conntrack_supported();
    service_counters.conntrack_netlink.store(g_conntrack_supported ? 1 : 0);
    // Room for workers of queues a reload adds later.
    exchange = std::make_unique<service::PolicyExchange>(
        service::BuildPolicy(AdaptToKernel(config, service_counters), plan.size(), 1, factory,
                             host),
        plan.size(), kMaxLiveWorkers);
    // (metrics) Serves /metrics; a busy port throws (one line, exit 2).
    metrics_endpoint->Start(service, service_counters);
    if (auto* server = metrics_endpoint->server()) {  // Hook (rules): per-rule counters
      server->AddCollectable(service::DaemonRuleStats());
      server->AddCollectable(host->Collector());  // Hook (extensions): per-extension metrics
    }
    // Config: live reload (SIGHUP, `verdictd ctl reload`) and the control socket.
    reloader = std::make_unique<service::Reloader>(
        source, config, *exchange,
        [&service, &service_counters, host](const config::Config& next,
                                             std::uint64_t generation) {
          return service::BuildPolicy(AdaptToKernel(next, service_counters), service.slot_count(),
                                      generation, MakeDeciderFactory(next, *host), host);
        },
        service_counters, [](const config::Config& next) { service::SetLogLevel(next.log.level); },
        &service);  // [[queues]] changes: workers added and removed live
    // (operations) systemd hears of every reload, from SIGHUP or the socket.
    reloader->set_observer([&notifier, &service, &reloader](bool starting) {
      if (starting) {
        notifier.Reloading();
      } else {
        notifier.Ready(StatusLine(service, reloader->generation(), {}));
      }
    });
    if (config.control.enabled) {
      // The kernel's table through the descriptor the metrics hold (opened
      // while privileged); none when metrics are disabled.
      const metrics::QueueCollector* kernel = metrics_endpoint->queues();
      auto kernel_table = [kernel]() -> service::KernelTable {
        return kernel != nullptr ? kernel->ReadKernelTable() : std::nullopt;
      };
      service::ControlServer::Handler handler = service::MakeControlHandler(
          *reloader, service_counters,
          [&service, kernel_table] {
            std::string text;
            const service::KernelTable table = kernel_table();
            text = "pid " + std::to_string(getpid()) + "\n";
            service.VisitCounters([&](auto queues) {
              text += service::WorkerCountersStatus(queues) +
                     service::QueueStatusLines(queues, table);  // (operations) per queue
            });
            return text;
          },
          [&reloader, host](const extensions::ExtCommand& command) {
            // Hook (extensions): ctl ext ...
            return extensions::RunExtCommand(*host, command, [&reloader]() -> std::string {
              const service::ReloadResult result = reloader->Reload("control socket: ext");
              return result.applied ? "" : result.message;
            });
          },
          [&service, kernel_table](const service::ControlCommand& command) -> std::string {
            if (command.verb == service::ControlVerb::kUpgrade) {
              return Upgrade(command.binary, service);
            }
            // (operations) `verdictd ctl top` samples per-queue counters.
            std::string text = "ok\n";
            const service::KernelTable table = kernel_table();
            service.VisitCounters(
                [&](auto queues) { text += service::QueueSampleLines(queues, table); });
            return text;
          });
      control = service::StartControlServer(
          config.control.socket, WithTestHooks(std::move(handler), service),
          service_counters, inherited.control_fd);
      inherited.control_fd = -1;
    }
    if (inherited.control_fd >= 0) ::close(inherited.control_fd);  // control now disabled
    service.Start(*exchange, [] { kill(getpid(), SIGTERM); });
  } catch (const std::exception& e) {
    metrics_endpoint->Stop();  // before the service's counters go
    spdlog::error("{}", e.what());
    if (handover >= 0) service::SendLine(handover, std::string("error ") + e.what() + "\n");
    return service::kExitUsage;
  }
  // (operations) READY=1 only once every worker is in its receive loop.
  while (!service.AllReceiving() && !service.failed()) {
    if (const int early = signals.Wait(1); early != 0) {
      kill(getpid(), early);  // handled by the loop below
      break;
    }
  }
  notifier.Ready(StatusLine(service, exchange->generation(), {}));
  if (handover >= 0) {
    service::SendLine(handover, "running pid " + std::to_string(getpid()) + "\n");
    ::close(handover);
  }
  // systemd: the bound sockets go to the file descriptor store
  // (FileDescriptorStoreMax=), so a restart takes them back still bound.
  // Only where the manager keeps them ($FDSTORE > 0: systemd 254+ sets it
  // from FileDescriptorStoreMax=, the unit sets it for older ones): a store
  // that drops them would turn the stop below into an unbind without drain.
  bool fds_stored = false;
  const char* fdstore = std::getenv("FDSTORE");
  if (notifier.enabled() && fdstore != nullptr && std::atoi(fdstore) > 0) {
    service::HandOverManifest store;
    store.queues = service.Sockets();
    if (control) store.control_fd = control->listen_fd();
    const int stored = service::StoreFds(store);
    fds_stored = stored > 0;
    spdlog::info("systemd file descriptor store: {} socket(s) sent", stored);
  }
  spdlog::info("running {} worker(s) on queues {}..{}, default verdict {}", plan.size(),
               plan.front().queue.queue_num, plan.back().queue.queue_num,
               config::VerdictSettingText(config.verdict.default_verdict));

  // (operations) The watchdog is pinged only while every worker progresses.
  const std::uint64_t watchdog_usec = notifier.watchdog_usec();
  service::WorkerWatchdog watchdog(watchdog_usec > 0 ? watchdog_usec * 1000 / 2
                                                     : kDefaultStallBoundNs);
  const int tick_ms = watchdog_usec > 0
                          ? static_cast<int>(std::clamp<std::uint64_t>(watchdog_usec / 4000, 1, 1000))
                          : 1000;
  if (watchdog_usec > 0) {
    spdlog::info("systemd watchdog: {} ms; a worker counts as stalled after {} ms",
                 watchdog_usec / 1000, watchdog.stall_bound_ns() / 1'000'000);
  }
  service::Successor successor;  // set when the loop ends for an upgrade
  bool was_healthy = true;
  std::uint64_t status_ns = 0;  // when STATUS= was last refreshed
  for (;;) {
    const int signal = signals.Wait(tick_ms);
    {
      std::vector<service::WorkerProgress> progress = service.Progress();
      // Packets the kernel holds for a worker count as waiting work too (a
      // worker stuck inside a batch may have drained its socket).
      if (const metrics::QueueCollector* kernel = metrics_endpoint->queues()) {
        if (const service::KernelTable table = kernel->ReadKernelTable()) {
          for (service::WorkerProgress& p : progress) {
            for (const queueio::KernelQueueStats& row : *table) {
              if (row.queue_num == p.queue && row.queue_total > 0) p.work_waiting = true;
            }
          }
        }
      }
      const std::uint64_t now = service::MonotonicNanos();
      const bool healthy = watchdog.Check(progress, now);
      // A change of health at once; the counts at most once a second.
      if (notifier.enabled() && (healthy != was_healthy || now - status_ns >= 1'000'000'000)) {
        notifier.Status(StatusLine(service, exchange->generation(), watchdog.stalled()));
        status_ns = now;
      }
      was_healthy = healthy;
      if (healthy) notifier.WatchdogPing();
    }
    if (signal == 0) {
      exchange->Reclaim();  // frees policies no worker reads any more
      continue;
    }
    if (signal == SIGUSR2) {
      std::lock_guard lock(g_successor_mutex);
      if (g_successor.pid < 0) continue;
      successor = g_successor;
      spdlog::info("upgrade: handing the queues over to pid {}", successor.pid);
      break;
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
    if (service.failed()) {
      // A worker gave up (it logged which queue and why) and asked for this
      // stop: exit 1 below, so that the service manager restarts verdictd.
      spdlog::error("stopping after a worker failed: draining the other queues");
    } else {
      spdlog::info("{}: stopping: draining queued packets", strsignal(signal));
    }
    notifier.Stopping();
    break;
  }
  if (successor.pid >= 0) {
    // Upgrade, in order: stop receiving, verdict what was read, pass the
    // sockets, exit. The queues stay bound all along (the new process holds
    // the same sockets), so what waits in them or in the kernel is not lost.
    const std::uint64_t start = service::MonotonicNanos();
    service::HandOverManifest manifest;
    if (control) manifest.control_fd = control->Release();
    manifest.queues = service.HandOver();
    // The metrics port is not handed over (the HTTP server binds its own
    // listener): the new process binds it once this one let it go.
    metrics_endpoint->Stop();
    notifier.MainPid(successor.pid);  // systemd: the new process is the service now
    std::string why = service::SendManifest(successor.socket, manifest);
    if (why.empty()) why = service::AwaitRunning(successor.socket, kUpgradeTimeoutMs);
    const double ms = static_cast<double>(service::MonotonicNanos() - start) / 1e6;
    service.VisitCounters([](auto queues) {
      for (const service::QueueCountersRef& queue : queues) {
        spdlog::info("{}", service::SummarizeCounters(queue.queue, *queue.counters));
      }
    });
    if (!why.empty()) {
      spdlog::error("upgrade: the hand-over to pid {} failed after this process stopped: {}",
                    successor.pid, why);
      return service::kExitRuntimeError;
    }
    spdlog::info("upgrade: pid {} runs the queues; hand-over took {:.3f} ms; exiting",
                 successor.pid, ms);
    return service::kExitOk;
  }
  if (fds_stored) {
    // The store holds the sockets: they stay bound for the next start,
    // which reads what waits in them. Only what was read gets its verdict.
    if (control) control->Release();
    service.HandOver();
    spdlog::info("queues left bound in the systemd file descriptor store");
  } else {
    control.reset();  // no reload may change the queues while they stop
    service.Stop();
  }
  metrics_endpoint->Stop();  // (metrics) before the service's counters go
  service.VisitCounters([](auto queues) {
    for (const service::QueueCountersRef& queue : queues) {
      spdlog::info("{}", service::SummarizeCounters(queue.queue, *queue.counters));
    }
  });
  service::LogRuleSummary();  // Hook (rules): per-rule hits and bytes
  if (service.failed()) {
    spdlog::error("stopped after a worker failed: {}", service.failure());
    return service::kExitRuntimeError;
  }
  spdlog::info("stopped cleanly");
  return service::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // Upgrade: the path as started (/proc/self/exe reads "(deleted)" once a
  // package replaced the file) and the arguments, for the next process.
  const int handover = service::InheritedHandOverSocket();
  RememberInvocation(argc, argv);
  CLI::App app{"verdictd: gives verdicts to packets queued by NFQUEUE firewall rules", "verdictd"};
  // The version is the project()'s, the same string verdictd_build_info and the
  // package carry.
  app.set_version_flag("--version", std::string("verdictd ") + metrics::BuildVersion());
  service::RunOptions options;
  service::AddRunFlags(app, options);
  service::ConfigFlags config_flags;  // --config, --set, --check-config, --print-config
  service::AddConfigFlags(app, options.config_file, config_flags);
  std::vector<service::Subcommand> subcommands;
  subcommands.push_back(service::AddReplayCommand(app));  // Hook (rules): verdictd replay
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
  return RunDaemon(source, handover);
}
