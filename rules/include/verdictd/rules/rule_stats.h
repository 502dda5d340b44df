// Per-rule hit and byte counters for the metrics endpoint.
//
// Every worker's RuleEngine counts into its own plain counters; RuleStats
// keeps a list of the live engines and sums them by rule name when the
// metrics are scraped. An engine that goes away (its policy was replaced by a
// reload) folds its totals into the retired sums first, so the exported
// counters never go backwards. Register/Unregister/Collect take a mutex; they
// run on the control plane and the scrape thread, never per packet.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

namespace verdictd::rules {

class RuleEngine;

class RuleStats : public prometheus::Collectable {
 public:
  void Register(const RuleEngine* engine);
  void Unregister(const RuleEngine* engine);

  // verdictd_rule_hits_total{rule}, verdictd_rule_bytes_total{rule},
  // verdictd_rules_events_total{event}.
  std::vector<prometheus::MetricFamily> Collect() const override;

  struct Totals {
    std::uint64_t hits = 0;
    std::uint64_t bytes = 0;
  };
  // Sums by rule name (tests, replay summaries).
  std::map<std::string, Totals> RuleTotals() const;
  std::map<std::string, std::uint64_t> EventTotals() const;

 private:
  void AddEngine(const RuleEngine& engine, std::map<std::string, Totals>& rules,
                 std::map<std::string, std::uint64_t>& events) const;
  mutable std::mutex mutex_;
  std::vector<const RuleEngine*> engines_;
  std::map<std::string, Totals> retired_rules_;
  std::map<std::string, std::uint64_t> retired_events_;
};

}  // namespace verdictd::rules
