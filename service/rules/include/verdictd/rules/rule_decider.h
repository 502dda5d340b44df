// The rule engine behind the service's Decider seam, and what the daemon
// shares between the deciders of every policy generation (metrics, log).
#pragma once

#include <cstddef>
#include <memory>

#include "verdictd/rules/engine.h"
#include "verdictd/rules/rule_log.h"
#include "verdictd/rules/rule_stats.h"
#include "verdictd/service/decider.h"

namespace verdictd::rules {

// Created once by the daemon; outlives every policy (deciders keep it alive).
struct RuleRuntime {
  std::shared_ptr<RuleStats> stats = std::make_shared<RuleStats>();
  std::shared_ptr<RuleLog> log;  // null: rules with log = true write nothing
};

class RuleDecider final : public service::Decider {
 public:
  RuleDecider(std::shared_ptr<const RuleSet> rules, std::size_t worker, const RuleRuntime& runtime)
      : log_(runtime.log),
        engine_(std::move(rules), log_ ? log_->ring(worker) : nullptr, runtime.stats) {}
  queueio::Verdict Decide(const queueio::PacketView& packet) noexcept override {
    return engine_.Decide(packet).verdict;
  }
  RuleEngine& engine() noexcept { return engine_; }

 private:
  std::shared_ptr<RuleLog> log_;  // declared first: outlives engine_
  RuleEngine engine_;
};

}  // namespace verdictd::rules
