#include "verdictd/service/build_policy.h"

#include <utility>

namespace verdictd::service {

queueio::Verdict ToQueueVerdict(const config::VerdictSetting& setting) noexcept {
  queueio::Verdict verdict;
  verdict.kind = static_cast<queueio::VerdictKind>(setting.kind);
  verdict.target_queue = setting.target_queue;
  return verdict;
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
