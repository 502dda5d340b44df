// The packet header parser and rule evaluation over arbitrary packets: the
// bytes a hostile peer controls. A rule set with every kind of condition
// (addresses and sets, ports, flags, ICMP, content, rate limit, bypass) is
// compiled once; each input is one packet, its first byte choosing the
// mark and whether the copy range cut it. The packet is copied to end just
// before an unmapped page, so a read past its end faults at once instead of
// only when the allocator happens to place the input at a mapping's end (as
// Hyperscan's AVX-512 VBMI code did; rules/src/scan_guard.h).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>

#include "fuzz_target.h"
#include "verdictd/config/loader.h"
#include "verdictd/queueio/packet.h"
#include "verdictd/rules/engine.h"
#include "verdictd/rules/packet_headers.h"
#include "verdictd/rules/rule_set.h"

namespace {

constexpr const char* kRules = R"(
[verdict]
default = "accept"
unparseable = "drop"

[[rules]]
name = "telnet"
protocol = "tcp"
dst_ports = [23, "2300-2400"]
tcp_flags = "SYN/SYN,ACK"
action = "drop"

[[rules]]
name = "pings"
protocol = "icmp"
icmp_type = 8
action = "rate_limit"
rate = 10
burst = 5
over_limit = "drop"

[[rules]]
name = "v6net"
src = ["2001:db8::/32", "10.0.0.0/8"]
dst = ["192.168.0.0/16", "::/0"]
action = "mark"
mark = "0x10/0xff"

[[rules]]
name = "content"
protocol = "udp"
content = [{ literal = "attack", nocase = true }, { regex = "evil[0-9]+", offset = 8 }]
action = "drop"

[[rules]]
name = "bulk"
protocol = "tcp"
action = "bypass"
bypass_after_packets = 3
bypass_via = "mark"
bypass_mark = "0x20/0x20"
)";

verdictd::rules::RuleEngine& Engine() {
  static std::unique_ptr<verdictd::rules::RuleEngine> engine = [] {
    verdictd::config::LoadResult loaded = verdictd::config::LoadConfigString(kRules, "fuzz-rules.toml");
    if (!loaded.ok()) std::abort();
    verdictd::rules::CompileOptions options;
    options.allow_unknown_interfaces = true;
    verdictd::rules::CompileResult compiled = verdictd::rules::CompileConfig(loaded.config, options);
    if (compiled.rules == nullptr) std::abort();
    return std::make_unique<verdictd::rules::RuleEngine>(compiled.rules);
  }();
  return *engine;
}

// The last kWindow bytes before a PROT_NONE page.
constexpr std::size_t kWindow = 1 << 20;
std::uint8_t* WindowEnd() {
  static std::uint8_t* end = [] {
    const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    void* mapping = mmap(nullptr, kWindow + page, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) std::abort();
    auto* base = static_cast<std::uint8_t*>(mapping);
    if (mprotect(base + kWindow, page, PROT_NONE) != 0) std::abort();
    return base + kWindow;
  }();
  return end;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  if (size - 1 > kWindow) return 0;
  std::uint8_t* const at = WindowEnd() - (size - 1);
  if (size > 1) std::memcpy(at, data + 1, size - 1);
  const std::span<const std::uint8_t> bytes(at, size - 1);
  verdictd::rules::PacketFields fields;
  verdictd::rules::ParseHeaders(bytes, fields);

  verdictd::queueio::PacketView packet;
  packet.id = 1;
  packet.payload = bytes;
  packet.original_length = static_cast<std::uint32_t>(bytes.size()) + ((control & 1) ? 100 : 0);
  packet.has_mark = (control & 2) != 0;
  packet.mark = control;
  packet.hw_protocol = (control & 4) ? 0x86dd : 0x0800;
  static std::int64_t now_ns = 1;
  now_ns += (control >> 3) * 1'000'000;  // time moves, so buckets refill
  Engine().Decide(packet, now_ns);
  return 0;
}
