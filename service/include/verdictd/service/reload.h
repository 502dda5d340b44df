// Live reload: re-read the configuration, check it off the packet path, and
// publish a new Policy when it may be applied live.
//
// Reload() is control-plane code: it allocates, logs, and may be called from
// several threads (the signal loop on SIGHUP, the control socket on
// `verdictd ctl reload`); calls are serialized by an internal mutex. Workers
// never wait for it: they pick up the new policy at their next batch through
// PolicyExchange, each seeing the old or the new policy whole.
//
// What can change live: [verdict] (default, unparseable and the batching
// keys), [log] level, the rules, and, with a QueueChanger, [[queues]]: added
// queues get workers, removed ones are drained and unbound, the others run on
// untouched. A change to a restart-only key ([metrics], [control], [process],
// or the settings of a queue that stays) refuses the whole reload and names
// the keys (see config/changes.h). An invalid file changes nothing. Both
// count as reload failures. So does a queue change whose commit fails (an
// added queue's worker did not start, or verdictd stopped in between): the
// new policy is already published and stays, the result says which queue
// did not start and `applied` is false; the next reload adds it again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/config/loader.h"
#include "verdictd/metrics/service_counters.h"
#include "verdictd/service/policy.h"
#include "verdictd/service/policy_exchange.h"
#include "verdictd/service/queue_changer.h"

namespace verdictd::service {

// Where the effective configuration comes from: defaults, then the file, then
// the command line. Kept for the life of the process so that a reload applies
// the same flags again.
struct ConfigSource {
  std::string file;                    // "" : the embedded defaults
  std::vector<std::string> overrides;  // --set KEY=VALUE, applied over the file
  // The named flags (--queues, --default-verdict, ...); may throw
  // std::exception with a one-line message.
  std::function<void(config::Config&)> apply_flags;
  unsigned online_cpus = 0;  // 0: the machine's
};

// Loads `source`: every problem as a diagnostic, never an exception (except
// std::bad_alloc).
config::LoadResult LoadEffectiveConfig(const ConfigSource& source);

struct ReloadResult {
  bool applied = false;
  std::uint64_t generation = 0;  // the running generation afterwards
  std::string message;           // one line, or several for a list of errors
};

class Reloader {
 public:
  // Builds the policy of `config` with the given generation; may throw
  // std::exception (the reload then fails and changes nothing).
  using BuildFn =
      std::function<std::shared_ptr<const Policy>(const config::Config&, std::uint64_t)>;
  // Applies the live settings that do not travel in the Policy (log level).
  using ApplyFn = std::function<void(const config::Config&)>;

  // `queues` (optional, not owned) applies [[queues]] changes live; without
  // it they need a restart.
  Reloader(ConfigSource source, config::Config running, PolicyExchange& exchange, BuildFn build,
           metrics::ServiceCounters& counters, ApplyFn apply = {}, QueueChanger* queues = nullptr);

  // `trigger` names the cause in the log ("SIGHUP", "control socket").
  ReloadResult Reload(std::string_view trigger);

  config::Config running() const;
  const ConfigSource& source() const { return source_; }
  std::uint64_t generation() const { return exchange_.generation(); }
  std::string last_result() const;

  // Called with true when a reload starts and false when it ends (applied or
  // refused), on the reloading thread, e.g. to tell systemd RELOADING=1 and
  // READY=1. Set before reloads can start.
  void set_observer(std::function<void(bool starting)> observer) {
    observer_ = std::move(observer);
  }

 private:
  ReloadResult Fail(std::string_view trigger, std::string message);

  const ConfigSource source_;
  PolicyExchange& exchange_;
  const BuildFn build_;
  const ApplyFn apply_;
  QueueChanger* const queues_;
  metrics::ServiceCounters& counters_;
  mutable std::mutex mutex_;
  config::Config running_;
  std::string last_result_ = "none yet";
  std::function<void(bool)> observer_;
};

}  // namespace verdictd::service
