// Everything the workers consult per packet that reload may replace live.
// Built and validated off the hot path, published through PolicyExchange,
// immutable once published.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/service/decider.h"

namespace verdictd::service {

struct Policy {
  std::uint64_t generation = 0;
  config::Config config;  // the configuration this policy was built from
  // deciders[i] belongs to worker i and is only called on its thread; it is
  // const-reachable from the Policy but the worker owns its use.
  std::vector<std::unique_ptr<Decider>> deciders;
  // Verdicts that come later (asynchronous extensions): one per process,
  // shared by every policy, outliving the workers. May be null.
  std::shared_ptr<decider::DeferredVerdicts> deferred;
};

}  // namespace verdictd::service
