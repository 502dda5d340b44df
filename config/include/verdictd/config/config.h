// The whole configuration of verdictd as one plain value.
//
// Every field has a named default; a default-constructed Config is the
// embedded configuration the service runs on without a file. A Config is
// validated once (see loader.h), then treated as immutable and replaced as a
// whole on reload. Plain data: copyable, comparable, no behaviour.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "verdictd/base/verdict_kind.h"
#include "verdictd/config/rule_spec.h"

namespace verdictd::config {

// The kinds a verdict setting names: the project's one list (base/).
using base::VerdictKind;
enum class CopyMode : std::uint8_t { kMeta, kPacket };
enum class LogLevel : std::uint8_t { kTrace, kDebug, kInfo, kWarn, kError, kOff };

struct VerdictSetting {
  VerdictKind kind = VerdictKind::kAccept;
  std::uint16_t target_queue = 0;  // kQueue only
  bool operator==(const VerdictSetting&) const = default;
};

// A contiguous range of queue numbers served by one worker each, matching an
// `iptables -j NFQUEUE --queue-balance first:first+count-1` rule.
struct QueueRange {
  static constexpr std::uint16_t kDefaultFirst = 0;
  static constexpr std::uint16_t kOnePerCpu = 0;  // count 0: one queue per online CPU
  static constexpr std::uint32_t kDefaultCopyRange = 0xffff;
  static constexpr std::uint32_t kDefaultMaxLength = 4096;
  static constexpr std::size_t kDefaultReceiveBuffer = std::size_t{8} << 20;
  static constexpr std::size_t kDefaultReceiveBatch = 64;

  std::uint16_t first = kDefaultFirst;
  std::uint16_t count = kOnePerCpu;
  // cpus[i] pins the worker of queue first+i; empty: the i-th online CPU.
  std::vector<int> cpus;
  CopyMode copy_mode = CopyMode::kPacket;
  std::uint32_t copy_range = kDefaultCopyRange;
  std::uint32_t max_length = kDefaultMaxLength;
  bool fail_open = true;
  bool gso = true;
  bool conntrack = false;
  bool uid_gid = false;
  bool secctx = false;  // ask for each packet's security context (NFQA_CFG_F_SECCTX)
  std::size_t receive_buffer_bytes = kDefaultReceiveBuffer;
  std::size_t receive_batch = kDefaultReceiveBatch;

  bool operator==(const QueueRange&) const = default;
};

struct VerdictSection {
  static constexpr std::size_t kDefaultBatchSize = 256;
  static constexpr std::uint32_t kDefaultFlushMicros = 1000;
  // 100 us: an inline IPS adds at most 0.1 ms per traversal (a round trip
  // crossing the queue twice, 0.2 ms), below a LAN round trip, while a
  // coalescing pause still gathers about 10 packets per wake-up at 150 kpps.
  static constexpr std::uint32_t kDefaultLatencyBudgetMicros = 100;

  VerdictSetting default_verdict;      // when nothing else decides
  VerdictSetting unparseable_verdict;  // packets whose headers cannot be parsed
  std::size_t batch_size = kDefaultBatchSize;  // verdicts held before a flush
  std::uint32_t flush_interval_us = kDefaultFlushMicros;  // longest a verdict waits
  std::uint32_t busy_poll_us = 0;  // low-latency mode: spin this long before sleeping
  // Longest a verdict may wait in userspace (for company in the batcher or in
  // a coalescing pause) before it is sent; the worker picks how (block,
  // pause, spin, flush at once). The bound in force is the smaller of this
  // and flush_interval_us. 0: every receive's verdicts go out at once.
  std::uint32_t latency_budget_us = kDefaultLatencyBudgetMicros;

  bool operator==(const VerdictSection&) const = default;
};

struct MetricsSection {
  static constexpr const char* kDefaultListen = "127.0.0.1:9470";
  bool enabled = true;
  std::string listen = kDefaultListen;
  bool operator==(const MetricsSection&) const = default;
};

struct ControlSection {
  static constexpr const char* kDefaultSocket = "/run/verdictd/control.sock";
  bool enabled = true;
  std::string socket = kDefaultSocket;
  bool operator==(const ControlSection&) const = default;
};

struct LogSection {
  LogLevel level = LogLevel::kInfo;
  bool operator==(const LogSection&) const = default;
};

struct ProcessSection {
  std::string user;  // empty: keep the starting user (only capabilities are dropped)
  bool operator==(const ProcessSection&) const = default;
};

// One [[extensions]] entry: an extension loaded into the chain, in order.
struct ExtensionEntry {
  std::string name;        // the extension's own name (its api struct's `name`)
  std::string file;        // in [extension_host] directory; empty: "<name>.so"
  std::string parameters;  // passed to load(), e.g. "param1,param2"
  std::uint32_t group = 0;  // mark mask: runs when (mark & group) != 0; 0: every packet
  bool started = true;      // false: loaded but skipped until `ctl ext start`
  bool operator==(const ExtensionEntry&) const = default;
};

// [extension_host] and the [[extensions]] chain.
struct ExtensionsSection {
  static constexpr const char* kDefaultDirectory = "/usr/lib/verdictd/extensions";
  static constexpr std::uint32_t kDefaultArenaConcurrency = 2;
  static constexpr std::uint32_t kDefaultPendingSlots = 256;
  static constexpr std::uint32_t kDefaultPendingTimeoutMs = 1000;
  static constexpr std::uint32_t kDefaultMaxPacketBytes = 9216;

  std::string directory = kDefaultDirectory;  // the only place extensions load from
  std::uint32_t arena_concurrency = kDefaultArenaConcurrency;  // oneTBB arena threads
  std::uint32_t pending_slots = kDefaultPendingSlots;  // packets in flight per worker
  std::uint32_t pending_timeout_ms = kDefaultPendingTimeoutMs;
  std::uint32_t max_packet_bytes = kDefaultMaxPacketBytes;  // edit bound and slot size
  VerdictSetting timeout_verdict;   // a pending packet past its deadline
  VerdictSetting overflow_verdict;  // a packet that finds the pending table full
  VerdictSetting end_verdict;       // a packet every extension passed on (NEXT)
  std::vector<ExtensionEntry> chain;

  bool operator==(const ExtensionsSection&) const = default;
};

struct Config {
  std::vector<QueueRange> queues{QueueRange{}};
  VerdictSection verdict;
  MetricsSection metrics;
  ControlSection control;
  LogSection log;
  ProcessSection process;
  RulesSection rules;
  ExtensionsSection extensions;

  bool operator==(const Config&) const = default;
};

}  // namespace verdictd::config
