// Interface names and hardware types by index, for ipq_packet_msg_t.
//
// A name is looked up (SIOCGIFNAME, SIOCGIFHWADDR on one socket kept open)
// the first time an index is seen and again when its entry is older than a
// second, so a renamed or replaced interface shows its new name within a
// second, and a busy queue costs two ioctls per interface per second, not
// per packet. Lookups in the network namespace the handle was created in.
// Allocates only when an index above every cached one appears; one thread.
#pragma once

#include <cstdint>
#include <vector>

#include "record.hh"

namespace verdictd::libipq {

class InterfaceCache final : public InterfaceDirectory {
 public:
  InterfaceCache() = default;
  ~InterfaceCache() override;
  InterfaceCache(const InterfaceCache&) = delete;
  InterfaceCache& operator=(const InterfaceCache&) = delete;

  // The clock of the entries' age (CLOCK_MONOTONIC ns), set once per batch.
  void set_now(std::uint64_t now_ns) noexcept { now_ns_ = now_ns; }

  std::uint16_t Lookup(std::uint32_t index, char* name) noexcept override;

  std::uint64_t lookups() const noexcept { return lookups_; }  // ioctl rounds done

 private:
  struct Entry {
    bool valid = false;
    std::uint64_t checked_ns = 0;
    std::uint16_t type = 0;
    char name[16] = {};
  };
  void Resolve(std::uint32_t index, Entry& entry) noexcept;

  // Indexes above this are resolved every time instead (never seen in practice).
  static constexpr std::uint32_t kMaxCachedIndex = 1u << 16;
  std::vector<Entry> entries_;
  std::uint64_t now_ns_ = 0;
  std::uint64_t lookups_ = 0;
  int fd_ = -1;
};

}  // namespace verdictd::libipq
