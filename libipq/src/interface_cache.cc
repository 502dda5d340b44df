#include "interface_cache.hh"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <new>

namespace verdictd::libipq {
namespace {

constexpr std::uint64_t kMaxAgeNs = 1'000'000'000;

}  // namespace

InterfaceCache::~InterfaceCache() {
  if (fd_ >= 0) close(fd_);
}

void InterfaceCache::Resolve(std::uint32_t index, Entry& entry) noexcept {
  ++lookups_;
  entry.valid = true;
  entry.checked_ns = now_ns_;
  entry.type = 0;
  entry.name[0] = '\0';
  if (fd_ < 0) {
    // Interface ioctls work on any socket; a unix one needs no protocol.
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
  }
  ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_ifindex = static_cast<int>(index);
  if (ioctl(fd_, SIOCGIFNAME, &ifr) != 0) return;  // gone: "" until it reappears
  static_assert(sizeof entry.name == IFNAMSIZ);
  std::memcpy(entry.name, ifr.ifr_name, IFNAMSIZ);
  entry.name[IFNAMSIZ - 1] = '\0';
  if (ioctl(fd_, SIOCGIFHWADDR, &ifr) == 0) entry.type = ifr.ifr_hwaddr.sa_family;
}

std::uint16_t InterfaceCache::Lookup(std::uint32_t index, char* name) noexcept {
  Entry scratch;
  Entry* entry = &scratch;
  if (index < kMaxCachedIndex) {
    if (index >= entries_.size()) {
      // A new highest index: the only allocation, once per such interface.
      try {
        entries_.resize(index + 1);
      } catch (const std::bad_alloc&) {
      }
    }
    if (index < entries_.size()) entry = &entries_[index];
  }
  if (!entry->valid || now_ns_ - entry->checked_ns >= kMaxAgeNs || entry->name[0] == '\0') {
    // Unknown, old, or not found last time (refreshed on every miss).
    if (!entry->valid || now_ns_ != entry->checked_ns) Resolve(index, *entry);
  }
  std::memcpy(name, entry->name, IFNAMSIZ);
  return entry->type;
}

}  // namespace verdictd::libipq
