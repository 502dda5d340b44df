// The decision seam lives in decider/ (verdictd::decider); the service and
// the rule engine name it here as before.
#pragma once

#include "verdictd/decider/decider.h"

namespace verdictd::service {

using decider::Decider;
using decider::FixedVerdictDecider;

}  // namespace verdictd::service
