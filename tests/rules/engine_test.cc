#include "verdictd/rules/engine.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <span>

#include <sys/mman.h>
#include <unistd.h>

#include "verdictd/rules/testing/packet_builder.h"
#include "test_util.h"
#include "verdictd/rules/rule_log.h"
#include "verdictd/rules/rule_stats.h"

namespace verdictd::rules {
namespace {

using queueio::VerdictKind;
using testing::BuildPacket;
using testing::CompileText;
using testing::PacketSpec;
using testing::ViewOf;

// Decides one packet built from `spec` and returns the deciding rule's name
// ("" for none).
std::string RuleFor(RuleEngine& engine, const PacketSpec& spec, Decision* out = nullptr) {
  auto bytes = BuildPacket(spec);
  Decision d = engine.Decide(ViewOf(bytes), 1);
  if (out) *out = d;
  return d.rule < 0 ? "" : engine.rule_name(static_cast<std::size_t>(d.rule));
}

TEST(RuleEngine, first_matching_rule_decides_when_rules_overlap) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "web-from-admin"
src = ["10.0.0.5"]
dst_ports = [80]
action = "accept"
[[rules]]
name = "web"
dst_ports = [80, 443]
action = "drop"
[[rules]]
name = "ten-net"
src = ["10.0.0.0/8"]
action = "queue"
queue = 7
)"));
  Decision d;
  EXPECT_EQ(RuleFor(engine, {.src = "10.0.0.5", .dst_port = 80}, &d), "web-from-admin");
  EXPECT_EQ(d.verdict.kind, VerdictKind::kAccept);
  EXPECT_EQ(RuleFor(engine, {.src = "10.0.0.6", .dst_port = 80}, &d), "web");
  EXPECT_EQ(d.verdict.kind, VerdictKind::kDrop);
  EXPECT_EQ(RuleFor(engine, {.src = "10.0.0.5", .dst_port = 443}), "web");
  EXPECT_EQ(RuleFor(engine, {.src = "10.0.0.5", .dst_port = 22}, &d), "ten-net");
  EXPECT_EQ(d.verdict.kind, VerdictKind::kQueue);
  EXPECT_EQ(d.verdict.target_queue, 7);
  EXPECT_EQ(RuleFor(engine, {.src = "11.0.0.5", .dst_port = 22}, &d), "");
  EXPECT_EQ(d.reason, DecisionReason::kNoMatch);
}

TEST(RuleEngine, port_range_bounds_are_inclusive) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "range"
protocol = ["tcp", "udp"]
dst_ports = ["1000-2000", 65535]
src_ports = ["0-1023"]
action = "drop"
)"));
  for (auto [port, match] : {std::pair{999, false}, {1000, true}, {1500, true}, {2000, true},
                             {2001, false}, {65535, true}, {0, false}}) {
    EXPECT_EQ(RuleFor(engine, {.src_port = 53, .dst_port = static_cast<std::uint16_t>(port)}) == "range", match)
        << port;
  }
  EXPECT_EQ(RuleFor(engine, {.protocol = 17, .src_port = 1023, .dst_port = 1000}), "range");
  EXPECT_EQ(RuleFor(engine, {.protocol = 17, .src_port = 1024, .dst_port = 1000}), "");
  EXPECT_EQ(RuleFor(engine, {.protocol = 132, .src_port = 0, .dst_port = 1000}), "");  // not tcp/udp
  // No ports at all (ICMP): a port rule never matches.
  EXPECT_EQ(RuleFor(engine, {.protocol = 1}), "");
}

TEST(RuleEngine, prefix_lengths_zero_full_and_both_families) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "host4"
dst = ["192.0.2.10/32"]
action = "drop"
[[rules]]
name = "host6"
dst = ["2001:db8::10/128"]
action = "drop"
[[rules]]
name = "net6"
src = ["2001:db8::/32"]
action = "accept"
[[rules]]
name = "all4"
src = ["0.0.0.0/0"]
action = "accept"
[[rules]]
name = "all6"
src = ["::/0"]
action = "repeat"
)"));
  EXPECT_EQ(RuleFor(engine, {.src = "1.2.3.4", .dst = "192.0.2.10"}), "host4");
  EXPECT_EQ(RuleFor(engine, {.src = "1.2.3.4", .dst = "192.0.2.11"}), "all4");
  EXPECT_EQ(RuleFor(engine, {.src = "255.255.255.255", .dst = "0.0.0.0"}), "all4");
  EXPECT_EQ(RuleFor(engine, {.src = "0.0.0.0", .dst = "192.0.2.10"}), "host4");
  EXPECT_EQ(RuleFor(engine, {.src = "2001:db9::1", .dst = "2001:db8::10"}), "host6");
  EXPECT_EQ(RuleFor(engine, {.src = "2001:db8:ffff::1", .dst = "2001:db8::11"}), "net6");
  EXPECT_EQ(RuleFor(engine, {.src = "2001:db9::1", .dst = "2001:db8::11"}), "all6");
  EXPECT_EQ(RuleFor(engine, {.src = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .dst = "::"}), "all6");
}

TEST(RuleEngine, named_sets_inline_and_from_file) {
  const std::string path = ::testing::TempDir() + "/rules_set_test.txt";
  {
    std::ofstream out(path);
    out << "# blocklist\n198.51.100.0/24\n\n  203.0.113.7  # one host\n2001:db8:bad::/48\n";
  }
  RuleEngine engine(CompileText(R"(
[sets.bad]
file = ")" + path + R"("
prefixes = ["192.0.2.0/25"]
[sets.good]
prefixes = ["192.0.2.64/26"]
[[rules]]
name = "good"
src = ["@good"]
action = "accept"
[[rules]]
name = "bad"
src = ["@bad", "100.64.0.1"]
action = "drop"
)"));
  EXPECT_EQ(RuleFor(engine, {.src = "198.51.100.200"}), "bad");
  EXPECT_EQ(RuleFor(engine, {.src = "203.0.113.7"}), "bad");
  EXPECT_EQ(RuleFor(engine, {.src = "203.0.113.8"}), "");
  EXPECT_EQ(RuleFor(engine, {.src = "100.64.0.1"}), "bad");
  EXPECT_EQ(RuleFor(engine, {.src = "192.0.2.1"}), "bad");
  EXPECT_EQ(RuleFor(engine, {.src = "192.0.2.65"}), "good");  // in both: order decides
  EXPECT_EQ(RuleFor(engine, {.src = "192.0.2.128"}), "");
  EXPECT_EQ(RuleFor(engine, {.src = "2001:db8:bad:1::1", .dst = "::1"}), "bad");
  EXPECT_EQ(RuleFor(engine, {.src = "2001:db8:bae::1", .dst = "::1"}), "");
  std::remove(path.c_str());
}

TEST(RuleEngine, protocol_icmp_and_tcp_flags) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "syn-only"
protocol = "tcp"
tcp_flags = "SYN/SYN,ACK"
action = "drop"
[[rules]]
name = "echo"
protocol = "icmp"
icmp_type = 8
icmp_code = 0
action = "drop"
[[rules]]
name = "echo6"
family = "ipv6"
protocol = "icmpv6"
icmp_type = 128
action = "drop"
[[rules]]
name = "gre"
protocol = 47
action = "accept"
)"));
  EXPECT_EQ(RuleFor(engine, {.tcp_flags = 0x02}), "syn-only");
  EXPECT_EQ(RuleFor(engine, {.tcp_flags = 0x12}), "");
  EXPECT_EQ(RuleFor(engine, {.tcp_flags = 0x0a}), "syn-only");  // SYN+PSH: not in the mask
  EXPECT_EQ(RuleFor(engine, {.protocol = 1, .icmp_type = 8}), "echo");
  EXPECT_EQ(RuleFor(engine, {.protocol = 1, .icmp_type = 0}), "");
  EXPECT_EQ(RuleFor(engine, {.protocol = 1, .icmp_type = 8, .icmp_code = 1}), "");
  EXPECT_EQ(RuleFor(engine, {.src = "::1", .dst = "::2", .protocol = 58, .icmp_type = 128}), "echo6");
  EXPECT_EQ(RuleFor(engine, {.protocol = 47}), "gre");
}

TEST(RuleEngine, interfaces_mark_ct_state_uid_gid_and_length) {
  CompileOptions options;
  options.resolve_interface = [](const std::string& name) -> std::uint32_t {
    return name == "eth0" ? 2 : name == "eth1" ? 3 : 0;
  };
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "in-eth0"
in_interface = "eth0"
out_interface = ["eth1"]
action = "accept"
[[rules]]
name = "marked"
mark = "0x10/0xf0"
action = "drop"
[[rules]]
name = "new-conn"
ct_state = ["new"]
action = "repeat"
[[rules]]
name = "replies"
ct_state = "reply"
action = "drop"
[[rules]]
name = "user"
uid = "1000-1999"
gid = 100
action = "drop"
[[rules]]
name = "big"
length = "1000-65535"
action = "drop"
)", options));
  auto bytes = BuildPacket({});
  auto view = ViewOf(bytes);
  auto name = [&](const queueio::PacketView& v) {
    const Decision d = engine.Decide(v, 1);
    return d.rule < 0 ? std::string() : engine.rule_name(static_cast<std::size_t>(d.rule));
  };
  EXPECT_EQ(name(view), "");
  auto v = view;
  v.indev = 2;
  EXPECT_EQ(name(v), "");  // needs both interfaces
  v.outdev = 3;
  EXPECT_EQ(name(v), "in-eth0");
  v = view;
  v.mark = 0x1f;
  EXPECT_EQ(name(v), "marked");
  v.mark = 0x20;
  EXPECT_EQ(name(v), "");
  v = view;
  v.has_ct = true;
  v.ct_info = queueio::CtInfo::kNew;
  EXPECT_EQ(name(v), "new-conn");
  v.ct_info = queueio::CtInfo::kEstablishedReply;
  EXPECT_EQ(name(v), "replies");
  v.ct_info = queueio::CtInfo::kEstablished;
  EXPECT_EQ(name(v), "");
  v = view;
  v.has_uid = v.has_gid = true;
  v.uid = 1999;
  v.gid = 100;
  EXPECT_EQ(name(v), "user");
  v.uid = 2000;
  EXPECT_EQ(name(v), "");
  v = view;
  v.original_length = 1000;  // a capture cut short: the real length counts
  EXPECT_EQ(name(v), "big");
  v.original_length = 999;
  EXPECT_EQ(name(v), "");
}

TEST(RuleEngine, nocase_content_at_offset_and_depth_bounds) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "get"
protocol = "tcp"
dst_ports = [80]
content = [{ literal = "get /admin", nocase = true, offset = 2, depth = 12 }]
action = "drop"
[[rules]]
name = "two-patterns"
dst_ports = [8080]
content = ["abc", { regex = "x[0-9]+y" }]
action = "drop"
[[rules]]
name = "port-80"
dst_ports = [80]
action = "accept"
)"));
  EXPECT_EQ(RuleFor(engine, {.payload = "..GET /ADMIN"}), "get");       // starts at offset
  EXPECT_EQ(RuleFor(engine, {.payload = "....GeT /admin"}), "get");     // ends at offset+depth
  EXPECT_EQ(RuleFor(engine, {.payload = ".GET /admin"}), "port-80");    // starts before offset
  EXPECT_EQ(RuleFor(engine, {.payload = ".....GET /admin"}), "port-80"); // ends past the depth
  EXPECT_EQ(RuleFor(engine, {.payload = "..GET /admi"}), "port-80");
  EXPECT_EQ(RuleFor(engine, {.dst_port = 8080, .payload = "abc x12y"}), "two-patterns");
  EXPECT_EQ(RuleFor(engine, {.dst_port = 8080, .payload = "abc xy"}), "");
  EXPECT_EQ(RuleFor(engine, {.dst_port = 8080, .payload = "x1y"}), "");
  const std::uint64_t scans = engine.counters().content_scans.value();
  EXPECT_EQ(scans, 8u);
  // Headers match no content rule: no scan.
  EXPECT_EQ(RuleFor(engine, {.dst_port = 22, .payload = "abc x1y"}), "");
  EXPECT_EQ(engine.counters().content_scans.value(), scans);
}

// Hyperscan 5.4's AVX-512 VBMI code reads past the bytes it scans; on a CPU
// with VBMI this test faulted before the engine copied payloads that end near
// a page end. Every packet here ends exactly `gap` bytes before a page that
// is not mapped, and the engine must still find patterns in its last bytes.
TEST(RuleEngine, content_scans_never_read_past_a_payload_that_ends_at_an_unmapped_page) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "content"
protocol = "udp"
content = [{ literal = "attack", nocase = true }]
action = "drop"
[[rules]]
name = "regex"
protocol = "udp"
content = [{ regex = "evil[0-9]+" }]
action = "drop"
)"));
  const long page = sysconf(_SC_PAGESIZE);
  void* mapping = mmap(nullptr, static_cast<std::size_t>(2 * page), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapping, MAP_FAILED);
  auto* base = static_cast<std::uint8_t*>(mapping);
  ASSERT_EQ(mprotect(base + page, static_cast<std::size_t>(page), PROT_NONE), 0);
  std::uint8_t* const page_end = base + page;
  std::mt19937 random(7);
  std::size_t matches_expected = 0;
  std::size_t matches_found = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string payload(random() % 300, '\0');
    for (char& c : payload) c = "aAtTcCkKeEvVilL0123xyz"[random() % 22];
    const char* tails[] = {"ATTACK", "attack", "evil7", "evil", "attac", ""};
    const std::string tail = tails[random() % 6];
    if (payload.size() >= tail.size()) payload.replace(payload.size() - tail.size(), tail.size(), tail);
    const bool expected = payload.find("evil0") != std::string::npos ||
                          payload.find("evil1") != std::string::npos ||
                          payload.find("evil2") != std::string::npos ||
                          payload.find("evil3") != std::string::npos ||
                          payload.find("evil7") != std::string::npos || [&] {
                            std::string lower = payload;
                            for (char& c : lower) c = static_cast<char>(std::tolower(c));
                            return lower.find("attack") != std::string::npos;
                          }();
    const auto bytes = BuildPacket({.protocol = 17, .dst_port = 9, .payload = payload});
    const std::size_t gap = random() % 3;  // 0 and 1 readable bytes faulted
    std::uint8_t* const at = page_end - gap - bytes.size();
    std::memcpy(at, bytes.data(), bytes.size());
    queueio::PacketView view = ViewOf(bytes);
    view.payload = std::span<const std::uint8_t>(at, bytes.size());
    const Decision d = engine.Decide(view, 1);
    matches_expected += expected;
    matches_found += d.rule >= 0;
    ASSERT_EQ(d.rule >= 0, expected) << "payload \"" << payload << "\", " << gap << " bytes before the page end";
  }
  EXPECT_GT(matches_expected, 1000u);
  EXPECT_EQ(matches_found, matches_expected);
  // Each of these payloads ended within 64 bytes of the page end: all copied.
  EXPECT_EQ(engine.counters().content_scans.value(), 4000u);
  EXPECT_EQ(engine.counters().content_scan_copies.value(), 4000u);

  // A payload that ends 100 bytes before the page end is scanned where it lies.
  const auto inside = BuildPacket({.protocol = 17, .dst_port = 9, .payload = "an attack"});
  std::uint8_t* const at = page_end - 100 - inside.size();
  std::memcpy(at, inside.data(), inside.size());
  queueio::PacketView view = ViewOf(inside);
  view.payload = std::span<const std::uint8_t>(at, inside.size());
  EXPECT_EQ(engine.Decide(view, 1).rule, 0);
  EXPECT_EQ(engine.counters().content_scans.value(), 4001u);
  EXPECT_EQ(engine.counters().content_scan_copies.value(), 4000u);
  munmap(mapping, static_cast<std::size_t>(2 * page));
}

TEST(RuleEngine, mark_repeat_and_queue_actions) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "mark-accept"
dst_ports = [1]
action = "mark"
set_mark = "0x500/0xf00"
[[rules]]
name = "mark-repeat"
dst_ports = [2]
action = "mark"
set_mark = 7
then = "repeat"
[[rules]]
name = "repeat"
dst_ports = [3]
action = "repeat"
[[rules]]
name = "queue"
dst_ports = [4]
action = "queue"
queue = 65535
)"));
  auto bytes = BuildPacket({.dst_port = 1});
  auto view = ViewOf(bytes);
  view.mark = 0xabcd;
  Decision d = engine.Decide(view, 1);
  EXPECT_EQ(d.verdict.kind, VerdictKind::kAccept);
  EXPECT_TRUE(d.verdict.set_mark);
  EXPECT_EQ(d.verdict.mark, 0xa5cdu);
  RuleFor(engine, {.dst_port = 2}, &d);
  EXPECT_EQ(d.verdict.kind, VerdictKind::kRepeat);
  EXPECT_EQ(d.verdict.mark, 7u);
  RuleFor(engine, {.dst_port = 3}, &d);
  EXPECT_EQ(d.verdict.kind, VerdictKind::kRepeat);
  EXPECT_FALSE(d.verdict.set_mark);
  RuleFor(engine, {.dst_port = 4}, &d);
  EXPECT_EQ(d.verdict.kind, VerdictKind::kQueue);
  EXPECT_EQ(d.verdict.target_queue, 65535);
}

TEST(RuleEngine, rate_limit_per_source_with_token_bucket) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "limit"
protocol = "udp"
action = "rate_limit"
rate = 10
burst = 3
over_limit = "drop"
)"));
  auto a = BuildPacket({.src = "10.0.0.1", .protocol = 17});
  auto b = BuildPacket({.src = "10.0.0.2", .protocol = 17});
  std::int64_t t = 1'000'000'000;
  std::vector<VerdictKind> got;
  for (int i = 0; i < 5; ++i) got.push_back(engine.Decide(ViewOf(a), t).verdict.kind);
  EXPECT_EQ(got, (std::vector<VerdictKind>{VerdictKind::kAccept, VerdictKind::kAccept, VerdictKind::kAccept,
                                           VerdictKind::kDrop, VerdictKind::kDrop}));
  EXPECT_EQ(engine.Decide(ViewOf(b), t).verdict.kind, VerdictKind::kAccept);  // its own bucket
  t += 100'000'000;  // 0.1 s: one token back
  EXPECT_EQ(engine.Decide(ViewOf(a), t).verdict.kind, VerdictKind::kAccept);
  EXPECT_EQ(engine.Decide(ViewOf(a), t).verdict.kind, VerdictKind::kDrop);
  t += 10'000'000'000;  // refill caps at the burst
  for (int i = 0; i < 3; ++i) EXPECT_EQ(engine.Decide(ViewOf(a), t).verdict.kind, VerdictKind::kAccept);
  EXPECT_EQ(engine.Decide(ViewOf(a), t).verdict.kind, VerdictKind::kDrop);
  EXPECT_EQ(engine.counters().rate_limited.value(), 4u);
}

TEST(RuleEngine, a_reloaded_engine_keeps_rate_buckets_and_bypassed_flows_of_surviving_rules) {
  constexpr const char* kRules = R"(
[[rules]]
name = "limit"
protocol = "udp"
action = "rate_limit"
rate = 1
burst = 2
over_limit = "drop"
[[rules]]
name = "bulk"
protocol = "tcp"
action = "bypass"
bypass_after_packets = 3
bypass_via = "mark"
bypass_mark = "0x100"
)";
  RuleEngine before(CompileText(kRules));
  auto udp = BuildPacket({.src = "10.0.0.1", .protocol = 17});
  auto tcp = BuildPacket({.src = "10.0.0.1", .dst = "10.0.0.2", .src_port = 40000, .dst_port = 22});
  const std::int64_t t = 1'000'000'000;
  EXPECT_EQ(before.Decide(ViewOf(udp), t).verdict.kind, VerdictKind::kAccept);
  EXPECT_EQ(before.Decide(ViewOf(udp), t).verdict.kind, VerdictKind::kAccept);
  EXPECT_EQ(before.Decide(ViewOf(udp), t).verdict.kind, VerdictKind::kDrop);  // burst spent
  for (int i = 0; i < 3; ++i) before.Decide(ViewOf(tcp), t);                   // flow bypassed

  // The reload compiles the rules again, with a new rule first: every index
  // shifts, the names stay.
  const std::string reloaded = std::string("[[rules]]\nname = \"new\"\nprotocol = \"icmp\"\n"
                                           "action = \"drop\"\n") + kRules;
  RuleEngine after(CompileText(reloaded));
  after.TakeStateFrom(before);
  EXPECT_EQ(after.Decide(ViewOf(udp), t).verdict.kind, VerdictKind::kDrop)
      << "the reload handed the source a fresh burst";
  const Decision d = after.Decide(ViewOf(tcp), t);
  EXPECT_TRUE(d.verdict.set_mark) << "the bypassed flow went back through inspection";
  EXPECT_EQ(d.verdict.mark, 0x100u);

  // Without the hand-over (or for a rule that is gone) the state starts anew.
  RuleEngine fresh(CompileText(reloaded));
  EXPECT_EQ(fresh.Decide(ViewOf(udp), t).verdict.kind, VerdictKind::kAccept);
  EXPECT_FALSE(fresh.Decide(ViewOf(tcp), t).verdict.set_mark);
  RuleEngine renamed(CompileText(R"(
[[rules]]
name = "limit-v2"
protocol = "udp"
action = "rate_limit"
rate = 1
burst = 2
over_limit = "drop"
)"));
  renamed.TakeStateFrom(before);
  EXPECT_EQ(renamed.Decide(ViewOf(udp), t).verdict.kind, VerdictKind::kAccept);
}

TEST(RuleEngine, carried_tokens_are_capped_at_the_new_burst) {
  RuleEngine before(CompileText(R"(
[[rules]]
name = "limit"
action = "rate_limit"
rate = 1
burst = 5
over_limit = "drop"
)"));
  auto packet = BuildPacket({.src = "10.0.0.9", .protocol = 17});
  const std::int64_t t = 1'000'000'000;
  EXPECT_EQ(before.Decide(ViewOf(packet), t).verdict.kind, VerdictKind::kAccept);  // 4 left
  RuleEngine after(CompileText(R"(
[[rules]]
name = "limit"
action = "rate_limit"
rate = 1
burst = 2
over_limit = "drop"
)"));
  after.TakeStateFrom(before);
  std::vector<VerdictKind> got;
  for (int i = 0; i < 3; ++i) got.push_back(after.Decide(ViewOf(packet), t).verdict.kind);
  EXPECT_EQ(got, (std::vector<VerdictKind>{VerdictKind::kAccept, VerdictKind::kAccept,
                                           VerdictKind::kDrop}));
}

TEST(RuleEngine, bypass_after_packets_marks_the_flow_in_both_directions) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "bulk"
protocol = "tcp"
dst_ports = [5001]
action = "bypass"
bypass_after_packets = 3
bypass_via = "mark"
bypass_mark = "0x100/0x100"
[[rules]]
name = "bulk-reply"
protocol = "tcp"
src_ports = [5001]
action = "bypass"
bypass_after_packets = 3
bypass_via = "mark"
bypass_mark = "0x100/0x100"
[[rules]]
name = "at-once"
dst_ports = [6000]
action = "bypass"
)"));
  auto out = BuildPacket({.src = "10.0.0.1", .dst = "10.0.0.2", .src_port = 40000, .dst_port = 5001});
  auto back = BuildPacket({.src = "10.0.0.2", .dst = "10.0.0.1", .src_port = 5001, .dst_port = 40000});
  auto other = BuildPacket({.src = "10.0.0.1", .dst = "10.0.0.2", .src_port = 40001, .dst_port = 5001});
  auto view = ViewOf(out);
  view.mark = 0x3;
  EXPECT_FALSE(engine.Decide(view, 1).verdict.set_mark);
  EXPECT_FALSE(engine.Decide(view, 1).verdict.set_mark);
  Decision d = engine.Decide(view, 1);  // the third packet carries the mark
  EXPECT_TRUE(d.verdict.set_mark);
  EXPECT_EQ(d.verdict.mark, 0x103u);
  EXPECT_EQ(d.verdict.kind, VerdictKind::kAccept);
  EXPECT_TRUE(engine.Decide(view, 1).verdict.set_mark);  // stragglers too
  EXPECT_FALSE(engine.Decide(ViewOf(other), 1).verdict.set_mark);  // another flow
  // The reply direction is the same flow, but another rule: its own count.
  EXPECT_FALSE(engine.Decide(ViewOf(back), 1).verdict.set_mark);
  auto now = BuildPacket({.dst_port = 6000});
  d = engine.Decide(ViewOf(now), 1);
  EXPECT_TRUE(d.verdict.set_connmark);
  EXPECT_EQ(d.verdict.connmark, 1u);
  EXPECT_FALSE(d.verdict.set_mark);
  EXPECT_EQ(engine.counters().bypass_marked.value(), 2u);
}

TEST(RuleEngine, bypass_after_bytes_counts_both_directions_of_one_rule) {
  RuleEngine engine(CompileText(R"(
[[rules]]
name = "bulk"
protocol = "udp"
action = "bypass"
bypass_after_bytes = 100
)"));
  auto out = BuildPacket({.src = "10.0.0.1", .dst = "10.0.0.2", .protocol = 17, .payload = std::string(22, 'x')});
  auto back = BuildPacket({.src = "10.0.0.2", .dst = "10.0.0.1", .protocol = 17, .src_port = 80,
                           .dst_port = 40000, .payload = std::string(22, 'x')});
  ASSERT_EQ(out.size(), 50u);
  EXPECT_FALSE(engine.Decide(ViewOf(out), 1).verdict.set_connmark);
  EXPECT_TRUE(engine.Decide(ViewOf(back), 1).verdict.set_connmark);
}

TEST(RuleEngine, fragments_and_unparseable_packets_get_their_verdicts_and_are_counted) {
  CompileOptions drop_unparseable;
  drop_unparseable.unparseable.kind = config::VerdictKind::kDrop;
  auto rules = CompileText(R"(
[[rules]]
name = "dns"
protocol = "udp"
dst_ports = [53]
action = "accept"
[[rules]]
name = "from-host"
src = ["10.0.0.1"]
action = "repeat"
)", drop_unparseable);
  RuleEngine engine(rules);
  Decision d;
  EXPECT_EQ(RuleFor(engine, {.protocol = 17, .dst_port = 53, .more_fragments = true}), "dns");
  // A later fragment has no ports: only the address rule can match it.
  EXPECT_EQ(RuleFor(engine, {.protocol = 17, .dst_port = 53, .fragment_offset = 100}, &d), "from-host");
  EXPECT_EQ(d.verdict.kind, VerdictKind::kRepeat);
  EXPECT_EQ(engine.counters().fragments.value(), 1u);
  auto bytes = BuildPacket({.protocol = 6});
  bytes.resize(30);  // cut in the TCP header
  d = engine.Decide(ViewOf(bytes), 1);
  EXPECT_EQ(d.reason, DecisionReason::kUnparseable);
  EXPECT_EQ(d.verdict.kind, VerdictKind::kDrop);
  std::vector<std::uint8_t> empty;
  EXPECT_EQ(engine.Decide(ViewOf(empty), 1).reason, DecisionReason::kUnparseable);
  EXPECT_EQ(engine.counters().unparseable.value(), 2u);

  CompileOptions queue_no_match;
  queue_no_match.no_match = {config::VerdictKind::kQueue, 3};
  RuleEngine by_verdict(CompileText(R"(
[rule_engine]
fragments = "drop"
[[rules]]
name = "from-host"
src = ["10.0.0.1"]
action = "accept"
)", queue_no_match));
  EXPECT_EQ(RuleFor(by_verdict, {.fragment_offset = 1}, &d), "");
  EXPECT_EQ(d.reason, DecisionReason::kFragment);
  EXPECT_EQ(d.verdict.kind, VerdictKind::kDrop);
  RuleFor(by_verdict, {.src = "10.9.9.9"}, &d);
  EXPECT_EQ(d.verdict.kind, VerdictKind::kQueue);
  EXPECT_EQ(d.verdict.target_queue, 3);
}

TEST(RuleEngine, counts_hits_and_bytes_per_rule_across_engines_and_reloads) {
  auto rules = CompileText(R"(
[[rules]]
name = "web"
dst_ports = [80]
action = "accept"
[[rules]]
name = "rest"
action = "drop"
)");
  auto stats = std::make_shared<RuleStats>();
  auto packet = BuildPacket({.dst_port = 80});
  auto other = BuildPacket({.dst_port = 81});
  {
    RuleEngine worker0(rules, nullptr, stats);
    RuleEngine worker1(rules, nullptr, stats);
    worker0.Decide(ViewOf(packet), 1);
    worker1.Decide(ViewOf(packet), 1);
    worker1.Decide(ViewOf(other), 1);
    auto totals = stats->RuleTotals();
    EXPECT_EQ(totals["web"].hits, 2u);
    EXPECT_EQ(totals["web"].bytes, 2 * packet.size());
    EXPECT_EQ(totals["rest"].hits, 1u);
  }
  RuleEngine after_reload(rules, nullptr, stats);
  after_reload.Decide(ViewOf(packet), 1);
  EXPECT_EQ(stats->RuleTotals()["web"].hits, 3u);  // never goes backwards
  auto families = stats->Collect();
  ASSERT_EQ(families.size(), 3u);
  EXPECT_EQ(families[0].name, "verdictd_rule_hits_total");
  bool found = false;
  for (const auto& metric : families[0].metric) {
    if (metric.label[0].value == "web") {
      EXPECT_EQ(metric.counter.value, 3.0);
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(RuleEngine, logs_matches_as_json_lines_and_drops_when_the_ring_is_full) {
  const std::string path = ::testing::TempDir() + "/rules_log_test.json";
  std::remove(path.c_str());
  auto rules = CompileText(R"(
[rule_engine]
log_rate = 1000
[[rules]]
name = "logged"
dst_ports = [80]
action = "drop"
log = true
[[rules]]
name = "quiet"
action = "accept"
)");
  {
    RuleLog log(path, 4);
    RuleEngine engine(rules, log.ring(0));
    auto packet = BuildPacket({.src = "192.0.2.1", .dst = "2.2.2.2", .src_port = 1234, .dst_port = 80});
    auto quiet = BuildPacket({.dst_port = 81});
    for (int i = 0; i < 6; ++i) engine.Decide(ViewOf(packet), 1'000'000'000);
    engine.Decide(ViewOf(quiet), 1'000'000'000);
    EXPECT_EQ(engine.counters().log_queued.value(), 4u);
    EXPECT_EQ(engine.counters().log_dropped_full.value(), 2u);
    EXPECT_EQ(log.DrainOnce(), 4u);
    engine.Decide(ViewOf(packet), 1'000'000'000);
    EXPECT_EQ(log.DrainOnce(), 1u);
  }
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_NE(line.find("\"src_ip\":\"192.0.2.1\",\"src_port\":1234,\"dest_ip\":\"2.2.2.2\",\"dest_port\":80,"
                        "\"proto\":\"TCP\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"rule\":\"logged\",\"action\":\"drop\"}"), std::string::npos) << line;
    EXPECT_EQ(line.rfind("{\"timestamp\":\"", 0), 0u) << line;
  }
  EXPECT_EQ(lines, 5);
  std::remove(path.c_str());
}

TEST(RuleEngine, log_rate_limit_drops_and_counts_lines) {
  auto rules = CompileText(R"(
[rule_engine]
log_rate = 2
[[rules]]
name = "logged"
action = "drop"
log = true
)");
  RuleLog log("/dev/null", 64);
  RuleEngine engine(rules, log.ring(0));
  auto packet = BuildPacket({});
  for (int i = 0; i < 10; ++i) engine.Decide(ViewOf(packet), 5'000'000'000);
  EXPECT_EQ(engine.counters().log_queued.value(), 2u);
  EXPECT_EQ(engine.counters().log_dropped_rate.value(), 8u);
  for (int i = 0; i < 10; ++i) engine.Decide(ViewOf(packet), 6'000'000'000);  // one second later
  EXPECT_EQ(engine.counters().log_queued.value(), 4u);
}

// The compiled lookup must give exactly what a rule-by-rule scan gives.
TEST(RuleEngine, agrees_with_a_linear_scan_on_random_rules) {
  std::mt19937 rng(12345);
  struct Ref {
    std::uint32_t src = 0;
    int src_len = -1;
    std::uint32_t dst = 0;
    int dst_len = -1;
    int proto = -1;
    int port_low = -1, port_high = -1;
  };
  std::vector<Ref> refs;
  std::string text;
  auto ip = [](std::uint32_t a) {
    return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
           std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
  };
  auto masked = [](std::uint32_t a, int len) { return len == 0 ? 0u : a & ~((1ull << (32 - len)) - 1); };
  for (int i = 0; i < 300; ++i) {
    Ref r;
    text += "[[rules]]\nname = \"r" + std::to_string(i) + "\"\naction = \"drop\"\n";
    if (rng() % 2) {
      r.src_len = static_cast<int>(rng() % 4) * 8 + static_cast<int>(rng() % 2);
      r.src = masked(0x0a000000u | (rng() & 0x0303ffu), r.src_len);
      text += "src = [\"" + ip(r.src) + "/" + std::to_string(r.src_len) + "\"]\n";
    }
    if (rng() % 2) {
      r.dst_len = 16 + static_cast<int>(rng() % 17);
      r.dst = masked(0xc0a80000u | (rng() & 0x0f0f), r.dst_len);
      text += "dst = [\"" + ip(r.dst) + "/" + std::to_string(r.dst_len) + "\"]\n";
    }
    if (rng() % 3 == 0) {
      r.proto = rng() % 2 ? 6 : 17;
      text += "protocol = " + std::to_string(r.proto) + "\n";
    }
    if (rng() % 2) {
      r.port_low = static_cast<int>(rng() % 100);
      r.port_high = r.port_low + static_cast<int>(rng() % 20);
      text += "dst_ports = [\"" + std::to_string(r.port_low) + "-" + std::to_string(r.port_high) + "\"]\n";
    }
    refs.push_back(r);
  }
  RuleEngine engine(CompileText(text));
  for (int n = 0; n < 5000; ++n) {
    const std::uint32_t src = 0x0a000000u | (rng() & 0x0303ffu);
    const std::uint32_t dst = 0xc0a80000u | (rng() & 0x0f0f);
    const int proto = rng() % 2 ? 6 : 17;
    const int port = static_cast<int>(rng() % 130);
    int expected = -1;
    for (std::size_t i = 0; i < refs.size() && expected < 0; ++i) {
      const Ref& r = refs[i];
      if (r.src_len >= 0 && masked(src, r.src_len) != r.src) continue;
      if (r.dst_len >= 0 && masked(dst, r.dst_len) != r.dst) continue;
      if (r.proto >= 0 && r.proto != proto) continue;
      if (r.port_low >= 0 && (port < r.port_low || port > r.port_high)) continue;
      expected = static_cast<int>(i);
    }
    auto bytes = BuildPacket({.src = ip(src), .dst = ip(dst), .protocol = static_cast<std::uint8_t>(proto),
                              .dst_port = static_cast<std::uint16_t>(port)});
    ASSERT_EQ(engine.Decide(ViewOf(bytes), 1).rule, expected) << ip(src) << " " << ip(dst) << " " << port;
  }
}

TEST(RuleEngineCompile, reports_compile_errors_with_file_line_and_rule_name) {
  std::vector<config::Diagnostic> diagnostics;
  auto section = testing::ParseSection(R"(
[[rules]]
name = "ok"
action = "accept"

[[rules]]
name = "bad-iface"
in_interface = "nosuch0"
action = "drop"

[[rules]]
name = "bad-regex"
content = [{ regex = "a(b" }, "fine"]
action = "drop"

[[rules]]
name = "maybe-iface"
in_interface = "nosuch1"
allow_unknown_interfaces = true
action = "drop"

[[rules]]
name = "contradiction"
family = "ipv6"
protocol = "icmp"
action = "drop"
)", diagnostics);
  ASSERT_TRUE(diagnostics.empty()) << testing::Joined(diagnostics);
  CompileOptions options;
  options.resolve_interface = [](const std::string&) -> std::uint32_t { return 0; };
  CompileResult result = Compile(section, options);
  EXPECT_EQ(result.rules, nullptr);
  ASSERT_EQ(result.diagnostics.size(), 3u) << testing::Joined(result.diagnostics);
  EXPECT_EQ(FormatDiagnostic(result.diagnostics[0]),
            "test.toml:6:1: rules (bad-iface).in_interface: unknown interface 'nosuch0' (create it "
            "first, or set allow_unknown_interfaces = true)");
  EXPECT_EQ(result.diagnostics[1].key, "rules (contradiction).protocol");
  EXPECT_EQ(result.diagnostics[1].line, 22);
  EXPECT_EQ(result.diagnostics[2].key, "rules (bad-regex).content");
  EXPECT_EQ(result.diagnostics[2].line, 13);
  EXPECT_NE(result.diagnostics[2].message.find("bad regex 'a(b'"), std::string::npos);
  EXPECT_THROW(CompileOrThrow(section, options), CompileError);
}

TEST(RuleEngineCompile, reports_bad_lines_of_a_set_file) {
  const std::string path = "/tmp/rules_bad_set_" + std::to_string(::getpid()) + ".txt";
  {
    std::ofstream out(path);
    out << "10.0.0.0/8\n10.0.0.1/8\nnot-an-address\n";
  }
  std::vector<config::Diagnostic> diagnostics;
  auto section = testing::ParseSection("[sets.s]\nfile = \"" + path + "\"\n", diagnostics);
  CompileResult result = Compile(section);
  ASSERT_EQ(result.diagnostics.size(), 2u) << testing::Joined(result.diagnostics);
  EXPECT_EQ(result.diagnostics[0].file, path);
  EXPECT_EQ(result.diagnostics[0].line, 2);
  EXPECT_NE(result.diagnostics[0].message.find("did you mean '10.0.0.0/8'"), std::string::npos);
  EXPECT_EQ(result.diagnostics[1].line, 3);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace verdictd::rules
