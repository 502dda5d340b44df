#include "verdictd/service/reload.h"

#include <spdlog/spdlog.h>

#include <exception>

#include "verdictd/config/changes.h"

namespace verdictd::service {

namespace {

std::string JoinKeys(const std::vector<std::string>& keys) {
  std::string text;
  for (const std::string& key : keys) {
    if (!text.empty()) text += ", ";
    text += key;
  }
  return text;
}

}  // namespace

config::LoadResult LoadEffectiveConfig(const ConfigSource& source) {
  config::LoadOptions options;
  options.online_cpus = source.online_cpus == 0 ? config::OnlineCpuCount() : source.online_cpus;
  options.overrides = source.overrides;
  config::LoadResult result = source.file.empty()
                                  ? config::LoadDefaults(options)
                                  : config::LoadConfigFile(source.file, options);
  if (!result.ok() || !source.apply_flags) return result;
  try {
    source.apply_flags(result.config);
  } catch (const std::exception& e) {
    config::Diagnostic d;
    d.file = std::string(config::kCommandLineName);
    d.message = e.what();
    result.diagnostics.push_back(std::move(d));
    return result;
  }
  // The named flags bypass the file checks; check their result as a whole.
  result.diagnostics = config::ValidateConfig(result.config, options.online_cpus);
  return result;
}

Reloader::Reloader(ConfigSource source, config::Config running, PolicyExchange& exchange,
                   BuildFn build, metrics::ServiceCounters& counters, ApplyFn apply,
                   QueueChanger* queues)
    : source_(std::move(source)),
      exchange_(exchange),
      build_(std::move(build)),
      apply_(std::move(apply)),
      queues_(queues),
      counters_(counters),
      running_(std::move(running)) {}

ReloadResult Reloader::Fail(std::string_view trigger, std::string message) {
  counters_.reload_failures.Add();
  spdlog::error("reload ({}) failed, the running configuration is unchanged: {}", trigger,
                message);
  last_result_ = "failed: " + message;
  return ReloadResult{false, exchange_.generation(), std::move(message)};
}

ReloadResult Reloader::Reload(std::string_view trigger) {
  std::lock_guard lock(mutex_);
  // Ends the reload for the observer however this returns (or throws).
  struct Observed {
    const std::function<void(bool)>& observer;
    explicit Observed(const std::function<void(bool)>& o) : observer(o) {
      if (observer) observer(true);
    }
    ~Observed() {
      if (observer) observer(false);
    }
  } observed(observer_);
  const std::string from = source_.file.empty() ? "the embedded defaults" : source_.file;
  config::LoadResult loaded = LoadEffectiveConfig(source_);
  if (!loaded.ok()) {
    std::string message = std::to_string(loaded.diagnostics.size()) + " error(s) in " + from;
    for (const config::Diagnostic& d : loaded.diagnostics) message += "\n  " + d.ToString();
    return Fail(trigger, std::move(message));
  }
  const std::vector<std::string> restart = config::RestartOnlyChanges(
      running_, loaded.config,
      queues_ != nullptr ? config::QueueChanges::kLive : config::QueueChanges::kRestart);
  if (!restart.empty()) {
    return Fail(trigger, "these keys cannot change while verdictd runs, restart to apply them: " +
                             JoinKeys(restart));
  }
  const std::vector<std::string> changed = config::ChangedKeys(running_, loaded.config);
  // Queues first: the added ones are bound (and may fail) before anything
  // changes, and the policy needs a decider for each of their workers.
  std::string queue_change;
  if (queues_ != nullptr) {
    try {
      queue_change = queues_->Prepare(loaded.config);
    } catch (const std::exception& e) {
      return Fail(trigger, e.what());
    }
  }
  const std::uint64_t generation = exchange_.generation() + 1;
  std::shared_ptr<const Policy> policy;
  try {
    policy = build_(loaded.config, generation);
  } catch (const std::exception& e) {
    if (queues_ != nullptr) queues_->Abort();
    return Fail(trigger, e.what());
  }
  // Rule files may have changed even when the configuration did not, so an
  // unchanged configuration is still rebuilt and published.
  exchange_.Publish(std::move(policy));
  // After publishing: added workers start on the new policy, removed ones
  // drain under it.
  std::string queue_warning;
  std::string queue_failure;
  if (queues_ != nullptr) {
    try {
      queue_warning = queues_->Commit();
    } catch (const std::exception& e) {  // the policy is out: report, do not unwind
      queue_failure = e.what();
    }
  }
  // The policy is published either way: it is what runs now. A queue that
  // did not start is not running, so the next reload adds it again.
  running_ = std::move(loaded.config);
  if (apply_) apply_(running_);
  std::string message = "generation " + std::to_string(generation) + " from " + from +
                        "; changed: " + (changed.empty() ? "nothing" : JoinKeys(changed));
  if (!queue_change.empty()) message += "; " + queue_change;
  if (!queue_failure.empty()) {
    counters_.reload_failures.Add();
    message = queue_failure + " (the rest of the reload applied: " + message + ")";
    spdlog::error("reload ({}) failed in part: {}", trigger, message);
    last_result_ = "failed: " + message;
    return ReloadResult{false, generation, std::move(message)};
  }
  counters_.reloads.Add();
  if (!queue_warning.empty()) message += "; warning: " + queue_warning;
  spdlog::info("reload ({}): {}", trigger, message);
  last_result_ = "applied: " + message;
  return ReloadResult{true, generation, std::move(message)};
}

config::Config Reloader::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

std::string Reloader::last_result() const {
  std::lock_guard lock(mutex_);
  return last_result_;
}

}  // namespace verdictd::service
