// The rule engine behind the Decider seam (verdictd::decider), and what the daemon
// shares between the deciders of every policy generation (metrics, log).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "verdictd/config/config.h"

#include "verdictd/decider/decider.h"
#include "verdictd/rules/engine.h"
#include "verdictd/rules/rule_log.h"
#include "verdictd/rules/rule_stats.h"

namespace verdictd::rules {

// Created once by the daemon; outlives every policy (deciders keep it alive).
struct RuleRuntime {
  std::shared_ptr<RuleStats> stats = std::make_shared<RuleStats>();
  std::shared_ptr<RuleLog> log;  // null: rules with log = true write nothing
};

// `inspector` (optional): the decider that packets matching an "inspect"
// rule go to (the worker's extension chain); without one they are accepted.
class RuleDecider final : public decider::Decider {
 public:
  RuleDecider(std::shared_ptr<const RuleSet> rules, std::size_t worker, const RuleRuntime& runtime,
              std::unique_ptr<decider::Decider> inspector = nullptr)
      : log_(runtime.log),
        engine_(std::move(rules), log_ ? log_->ring(worker) : nullptr, runtime.stats),
        inspector_(std::move(inspector)) {
    set_may_defer(inspector_ != nullptr && inspector_->may_defer());
  }
  // `now_ns` feeds the engine's rate limits and log budget (0: it reads the
  // clock when a rule needs it).
  queueio::Verdict Decide(const queueio::PacketView& packet, std::uint64_t now_ns) noexcept override {
    const Decision decision = engine_.Decide(packet, static_cast<std::int64_t>(now_ns));
    if (decision.inspect && inspector_ != nullptr) return inspector_->Decide(packet, now_ns);
    return decision.verdict;
  }
  decider::Decision DecideOrDefer(const queueio::PacketView& packet,
                                  std::uint64_t now_ns) noexcept override {
    const Decision decision = engine_.Decide(packet, static_cast<std::int64_t>(now_ns));
    if (decision.inspect && inspector_ != nullptr) return inspector_->DecideOrDefer(packet, now_ns);
    return {decision.verdict, false};
  }
  void TakeStateFrom(decider::Decider& previous) noexcept override {
    // Once per reload per worker, so the cast's cost does not matter.
    if (auto* old = dynamic_cast<RuleDecider*>(&previous)) engine_.TakeStateFrom(old->engine_);
  }
  RuleEngine& engine() noexcept { return engine_; }

 private:
  std::shared_ptr<RuleLog> log_;  // declared first: outlives engine_
  RuleEngine engine_;
  std::unique_ptr<decider::Decider> inspector_;
};

// The daemon's runtime for `config`: the stats collectable (register it with
// the metrics server) and the rule log (its thread started). Throws
// std::runtime_error when the log file cannot be opened.
RuleRuntime MakeRuleRuntime(const config::Config& config);

// The deciders of one policy: one RuleDecider per worker over one compiled
// rule set, or an empty vector when the configuration has no rules (the
// service then keeps its default decider). Throws CompileError listing every
// problem with file:line:column and rule name; a reload that gets it changes
// nothing.
std::vector<std::unique_ptr<decider::Decider>> MakeRuleDeciders(const config::Config& config,
                                                                  std::size_t workers,
                                                                  const RuleRuntime& runtime);

// What `--check-config` adds to the loader's checks: compile errors (unknown
// interfaces, bad regexes, unreadable set files), without touching the kernel.
std::vector<config::Diagnostic> CheckRules(const config::Config& config);

}  // namespace verdictd::rules
