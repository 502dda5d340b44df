// Builds a Policy (one Decider per worker) from a Config. Used at startup and
// by reload; runs on the control thread, may allocate, throws
// std::runtime_error with a one-line message when the config cannot be used
// (reload then keeps the old policy).
//
// The Decider seam: with no factory every worker gets a FixedVerdictDecider
// giving the configured default verdict. The rule engine plugs in by passing
// a DeciderFactory (see MakeDeciderFactory() in main.cc); a factory returning
// nullptr for a worker means "nothing to decide: default verdict".
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/queueio/verdict.h"
#include "verdictd/service/decider.h"
#include "verdictd/service/policy.h"

namespace verdictd::service {

// Makes the Decider of worker `worker` (0-based) for `config`. Called once per
// worker per policy; may throw std::runtime_error.
using DeciderFactory =
    std::function<std::unique_ptr<Decider>(const config::Config& config, std::size_t worker)>;

std::shared_ptr<const Policy> BuildPolicy(const config::Config& config, std::size_t workers,
                                          std::uint64_t generation,
                                          const DeciderFactory& factory = {},
                                          std::shared_ptr<decider::DeferredVerdicts> deferred = {});

// Rules with bypass_via = "connmark" need nf_conntrack_netlink; where the
// kernel lacks it (BindReport::conntrack_supported) it ignores the connmark
// of a verdict, and the flow would never leave the queue. Rewrites them in
// `config` to bypass through the packet mark (same bypass_mark value and
// mask, the `bypass_via = "mark"` recipe of docs/rules.md) and returns their
// names, in order.
std::vector<std::string> FallBackToMarkBypass(config::Config& config);

// The warning for the rules FallBackToMarkBypass() changed: what, why and the
// firewall rule that completes the mark recipe.
std::string MarkBypassFallbackWarning(const config::Config& config,
                                      const std::vector<std::string>& rules);

// The queueio verdict of a configured verdict setting. noexcept, no allocation.
queueio::Verdict ToQueueVerdict(const config::VerdictSetting& setting) noexcept;

}  // namespace verdictd::service
