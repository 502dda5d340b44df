// The accepted range of every numeric key, shared by the file loader, the
// command-line flags and the documentation. Why each bound is what it is:
// see docs/configuration.md.
#pragma once

#include <cstddef>
#include <cstdint>

namespace verdictd::config::limits {

inline constexpr std::int64_t kMaxQueueNumber = 65535;     // nfnetlink_queue ids are u16
inline constexpr std::int64_t kMaxCpuId = 4095;            // before the online check
inline constexpr std::int64_t kMaxCopyRange = 65535;       // the kernel caps at 0xffff
inline constexpr std::int64_t kMinMaxLength = 1;
inline constexpr std::int64_t kMaxMaxLength = 4294967295;  // queue_maxlen is u32
inline constexpr std::int64_t kMinReceiveBuffer = 4096;
// SO_RCVBUFFORCE takes an int and the kernel doubles it.
inline constexpr std::int64_t kMaxReceiveBuffer = std::int64_t{1} << 30;
inline constexpr std::int64_t kMinReceiveBatch = 1;
inline constexpr std::int64_t kMaxReceiveBatch = 1024;
inline constexpr std::int64_t kMinBatchSize = 1;
inline constexpr std::int64_t kMaxBatchSize = 65536;
// Workers size their verdict tables for max(batch_size at start, this), so a
// reload may raise verdict.batch_size live up to that; beyond it, restart.
inline constexpr std::int64_t kLiveBatchSizeCapacity = 4096;
// The most verdicts a worker started with `batch_size` can hold: what its
// tables are sized for, and how far a reload may raise the batch size.
inline constexpr std::size_t LiveBatchCapacity(std::size_t batch_size) noexcept {
  return batch_size > static_cast<std::size_t>(kLiveBatchSizeCapacity)
             ? batch_size
             : static_cast<std::size_t>(kLiveBatchSizeCapacity);
}
inline constexpr std::int64_t kMaxFlushMicros = 1000000;  // one second
inline constexpr std::int64_t kMaxBusyPollMicros = 1000000;
inline constexpr std::int64_t kMaxLatencyBudgetMicros = 1000000;
inline constexpr std::size_t kMaxSocketPath = 107;        // sun_path minus the NUL
inline constexpr std::size_t kMaxUserName = 32;

}  // namespace verdictd::config::limits
