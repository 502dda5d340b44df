// The decision seam: whatever gives packets their verdicts (the default
// verdict, the rule engine, extensions) implements Decider.
//
// One Decider instance belongs to one worker and is called only on that
// worker's thread, so it may keep per-worker state (rate-limit buckets,
// pattern-scan scratch) without locks. Decide() is on the hot path:
// noexcept, no allocation, no syscalls.
#pragma once

#include <cstdint>

#include "verdictd/queueio/packet.h"
#include "verdictd/queueio/verdict.h"

namespace verdictd::service {

class Decider {
 public:
  virtual ~Decider() = default;
  virtual queueio::Verdict Decide(const queueio::PacketView& packet) noexcept = 0;
  // Called on the worker's thread when a reload's policy replaces the one
  // `previous` belonged to, before this decider sees a packet: carry over
  // per-worker state that should survive the reload (rate-limit buckets,
  // bypassed flows). `previous` stays valid during the call only. Must not
  // allocate or throw; the default keeps nothing.
  virtual void TakeStateFrom(Decider& /*previous*/) noexcept {}
};

// Gives every packet the same verdict.
class FixedVerdictDecider final : public Decider {
 public:
  explicit FixedVerdictDecider(queueio::Verdict verdict) : verdict_(verdict) {}
  queueio::Verdict Decide(const queueio::PacketView&) noexcept override { return verdict_; }

 private:
  queueio::Verdict verdict_;
};

}  // namespace verdictd::service
