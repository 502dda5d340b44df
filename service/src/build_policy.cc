#include "verdictd/service/build_policy.h"

#include <cstdio>
#include <utility>

namespace verdictd::service {

std::vector<std::string> FallBackToMarkBypass(config::Config& config) {
  std::vector<std::string> changed;
  for (auto* list : {&config.rules.rules, &config.rules.included_rules}) {
    for (config::RuleSpec& rule : *list) {
      if (rule.action.kind != config::ActionKind::kBypass ||
          rule.action.via != config::BypassVia::kConnmark) {
        continue;
      }
      rule.action.via = config::BypassVia::kMark;
      changed.push_back(rule.name);
    }
  }
  return changed;
}

std::string MarkBypassFallbackWarning(const config::Config& config,
                                      const std::vector<std::string>& rules) {
  std::string names;
  std::string save;
  for (const std::string& name : rules) names += (names.empty() ? "" : ", ") + name;
  for (const auto* list : {&config.rules.rules, &config.rules.included_rules}) {
    for (const config::RuleSpec& rule : *list) {
      if (save.empty() && !rules.empty() && rule.name == rules.front()) {
        char text[160];
        std::snprintf(text, sizeof text,
                      "iptables -t mangle -A POSTROUTING -m mark --mark 0x%x/0x%x -j CONNMARK "
                      "--save-mark --mask 0x%x",
                      rule.action.mark.value, rule.action.mark.mask, rule.action.mark.mask);
        save = text;
      }
    }
  }
  return "rule(s) " + names +
         ": bypass_via = \"connmark\" needs nf_conntrack_netlink, which this kernel lacks (it "
         "would ignore the connmark and keep queueing the flow); they bypass through the packet "
         "mark instead (same bypass_mark). The firewall must copy that mark to the connection "
         "after the queue rule, e.g. '" + save +
         "' (docs/rules.md, bypass_via = \"mark\"), or load nf_conntrack_netlink and restart";
}

queueio::Verdict ToQueueVerdict(const config::VerdictSetting& setting) noexcept {
  return queueio::Verdict::Of(setting.kind, setting.target_queue);
}

std::shared_ptr<const Policy> BuildPolicy(const config::Config& config, std::size_t workers,
                                          std::uint64_t generation,
                                          const DeciderFactory& factory,
                                          std::shared_ptr<decider::DeferredVerdicts> deferred) {
  auto policy = std::make_shared<Policy>();
  policy->deferred = std::move(deferred);
  policy->generation = generation;
  policy->config = config;
  policy->deciders.reserve(workers);
  for (std::size_t worker = 0; worker < workers; ++worker) {
    std::unique_ptr<Decider> decider;
    // Rule engine / extensions: the factory decides per worker.
    if (factory) decider = factory(config, worker);
    if (!decider) {
      decider = std::make_unique<FixedVerdictDecider>(ToQueueVerdict(config.verdict.default_verdict));
    }
    policy->deciders.push_back(std::move(decider));
  }
  return policy;
}

}  // namespace verdictd::service
