// The decision seam: whatever gives packets their verdicts (the default
// verdict, the rule engine, extensions) implements Decider.
//
// One Decider instance belongs to one worker and is called only on that
// worker's thread, so it may keep per-worker state (rate-limit buckets,
// pattern-scan scratch) without locks. Decide() is on the hot path:
// noexcept, no allocation, no syscalls. It gets the time: `now_ns` is the
// worker's CLOCK_MONOTONIC time of the receive batch the packet came in (read
// once per batch), for rate limits and deadlines, so that no decider reads a
// clock per packet. 0 means unknown (a test calling a decider directly): a
// decider that needs the time then reads the clock itself.
//
// Verdicts that come later (asynchronous extensions): a decider built with
// may_defer() true is called through DecideOrDefer(), which may keep the
// packet (deferred = true: its verdict is not known yet). The answer then
// comes out of the worker's DeferredVerdicts (see below), which the worker
// polls every loop iteration; the worker tells its batcher about the
// deferred id so that no batch verdict covers it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "verdictd/queueio/packet.h"
#include "verdictd/queueio/verdict.h"

namespace verdictd::decider {

// What DecideOrDefer() answers: a verdict now, or "later" (deferred).
struct Decision {
  queueio::Verdict verdict;
  bool deferred = false;
};

class Decider {
 public:
  virtual ~Decider() = default;
  virtual queueio::Verdict Decide(const queueio::PacketView& packet,
                                  std::uint64_t now_ns) noexcept = 0;
  // Only called when may_defer() is true; the default never defers.
  virtual Decision DecideOrDefer(const queueio::PacketView& packet,
                                 std::uint64_t now_ns) noexcept {
    return Decision{Decide(packet, now_ns), false};
  }
  // Called on the worker's thread when a reload's policy replaces the one
  // `previous` belonged to, before this decider sees a packet: carry over
  // per-worker state that should survive the reload (rate-limit buckets,
  // bypassed flows). `previous` stays valid during the call only. Must not
  // allocate or throw; the default keeps nothing.
  virtual void TakeStateFrom(Decider& /*previous*/) noexcept {}

  // True when DecideOrDefer() may defer: the worker then calls it instead
  // of Decide(). Fixed at construction (read once per packet, no virtual call).
  bool may_defer() const noexcept { return may_defer_; }

 protected:
  void set_may_defer(bool may_defer) noexcept { may_defer_ = may_defer; }

 private:
  bool may_defer_ = false;
};

// Gives every packet the same verdict.
class FixedVerdictDecider final : public Decider {
 public:
  explicit FixedVerdictDecider(queueio::Verdict verdict) : verdict_(verdict) {}
  queueio::Verdict Decide(const queueio::PacketView&, std::uint64_t) noexcept override {
    return verdict_;
  }

 private:
  queueio::Verdict verdict_;
};

// Receives the verdicts of deferred packets (implemented by the worker).
class ReadyVerdicts {
 public:
  virtual ~ReadyVerdicts() = default;
  // `verdict.replacement` is valid during the call only.
  virtual void Ready(std::uint32_t id, const queueio::Verdict& verdict) noexcept = 0;
};

// The per-process source of deferred verdicts, one table per worker slot. It
// outlives every policy, so packets deferred under one policy are answered
// after a reload replaced it. Poll() and the other calls for worker w run on
// worker w's thread only; noexcept, no allocation.
class DeferredVerdicts {
 public:
  virtual ~DeferredVerdicts() = default;
  // Hands every verdict that is ready (completed, or past its deadline: the
  // timeout verdict) to `ready`. Returns how many.
  virtual std::size_t Poll(std::size_t worker, std::uint64_t now_ns,
                           ReadyVerdicts& ready) noexcept = 0;
  // Packets of `worker` still waiting for their verdicts.
  virtual std::size_t pending(std::size_t worker) const noexcept = 0;
  // The worker could not record `id` as deferred (its batcher's table is
  // full): the verdict is the overflow verdict now, the late answer will be
  // dropped. Returns the verdict to give.
  virtual queueio::Verdict Abandon(std::size_t worker, std::uint32_t id) noexcept = 0;
  // The worker finished a receive batch: work its deciders handed off during
  // the batch starts now (an asynchronous extension host publishes the
  // batch's jobs together, instead of one hand-off per packet). Called on
  // the worker's thread after every batch; the default has nothing to start.
  virtual void Dispatch(std::size_t /*worker*/) noexcept {}
  // Stop: every packet still pending gets its timeout verdict now.
  virtual std::size_t ExpireAll(std::size_t worker, ReadyVerdicts& ready) noexcept = 0;
  // The worker's blocking wait while packets are pending: returns once a
  // verdict is ready, `fd` (the queue socket) is readable, a deadline is due
  // or `timeout_ms` passed. False when this source cannot wait so (the
  // worker then uses a short receive timeout instead). The default cannot.
  virtual bool Wait(std::size_t /*worker*/, int /*fd*/, int /*timeout_ms*/,
                    std::uint64_t /*now_ns*/) noexcept {
    return false;
  }
};

}  // namespace verdictd::decider
