// The single-writer counters live in base/ (verdictd::base); metrics and its
// users name them here as before.
#pragma once

#include "verdictd/base/relaxed_counter.h"

namespace verdictd::metrics {

using base::RelaxedCounter;
using base::RelaxedMax;

}  // namespace verdictd::metrics
