// Rule engine decision cost per packet on a realistic mix, as the rule count
// grows: 10, 1,000 and 100,000 rules (each naming its own destination prefix
// and port) or prefixes (one rule over a named set), header-only and with
// 1,000 content patterns. One iteration is one packet: ns/iteration is
// ns/packet. The growth from 10 to 100,000 is the ratio of the two rows.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>

#include "verdictd/rules/engine.h"
#include "verdictd/rules/testing/packet_builder.h"

namespace {

using verdictd::config::ActionKind;
using verdictd::config::Cidr;
using verdictd::config::RuleSpec;
using verdictd::config::RulesSection;
using verdictd::rules::testing::BuildPacket;
using verdictd::rules::testing::PacketSpec;

Cidr V4(std::uint32_t address, int length) {
  Cidr c;
  c.family = 4;
  c.prefix_length = static_cast<std::uint8_t>(length);
  for (int i = 0; i < 4; ++i) c.bytes[i] = static_cast<std::uint8_t>(address >> (24 - 8 * i));
  return c;
}

std::string Ip(std::uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
         std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}

RuleSpec Rule(std::string name, ActionKind action) {
  RuleSpec r;
  r.name = std::move(name);
  r.action.kind = action;
  return r;
}

// The address of the i-th specific rule or set prefix: spread over 10/8 and 172.16/12.
std::uint32_t SpecificAddress(std::size_t i) {
  return (i % 2 ? 0x0a000000u : 0xac100000u) + static_cast<std::uint32_t>(i / 2) * 256u;
}

// The common tail every policy has: a few broad rules that decide most traffic.
void AddBroadRules(RulesSection& s) {
  RuleSpec dns = Rule("dns", ActionKind::kAccept);
  dns.protocols = {17};
  dns.dst_ports = {{53, 53}};
  s.rules.push_back(dns);
  RuleSpec web = Rule("web", ActionKind::kAccept);
  web.protocols = {6};
  web.dst_ports = {{80, 80}, {443, 443}};
  s.rules.push_back(web);
  RuleSpec ssh = Rule("ssh-admin", ActionKind::kAccept);
  ssh.src = {V4(0xc0a80000u, 16)};
  ssh.dst_ports = {{22, 22}};
  s.rules.push_back(ssh);
  RuleSpec high = Rule("high-ports", ActionKind::kDrop);
  high.dst_ports = {{1024, 65535}};
  high.protocols = {6, 17};
  s.rules.push_back(high);
}

RulesSection HeaderRules(std::size_t n) {
  RulesSection s;
  for (std::size_t i = 0; i < n; ++i) {
    RuleSpec r = Rule("r" + std::to_string(i), i % 3 ? ActionKind::kDrop : ActionKind::kAccept);
    r.dst = {V4(SpecificAddress(i), i % 4 ? 32 : 24)};
    r.dst_ports = {{static_cast<std::uint32_t>(1000 + i % 50), static_cast<std::uint32_t>(1000 + i % 50)}};
    r.protocols = {6};
    s.rules.push_back(r);
  }
  AddBroadRules(s);
  return s;
}

RulesSection SetRules(std::size_t n) {
  RulesSection s;
  verdictd::config::PrefixSetSpec set;
  set.name = "blocklist";
  for (std::size_t i = 0; i < n; ++i) set.prefixes.push_back(V4(SpecificAddress(i), i % 4 ? 32 : 24));
  s.sets.push_back(set);
  RuleSpec block = Rule("blocklist", ActionKind::kDrop);
  block.src_sets = {"blocklist"};
  s.rules.push_back(block);
  RuleSpec block_dst = Rule("blocklist-dst", ActionKind::kDrop);
  block_dst.dst_sets = {"blocklist"};
  s.rules.push_back(block_dst);
  AddBroadRules(s);
  return s;
}

void AddContent(RulesSection& s, std::size_t patterns) {
  // 1,000 patterns over 100 rules for web traffic, ahead of the broad rules
  // so that every port-80 packet is scanned.
  std::vector<RuleSpec> content_rules;
  for (std::size_t i = 0; i < patterns; ++i) {
    if (i % 10 == 0) {
      RuleSpec r = Rule("sig" + std::to_string(i / 10), ActionKind::kDrop);
      r.protocols = {6};
      r.dst_ports = {{80, 80}};
      content_rules.push_back(r);
    }
    verdictd::config::ContentSpec c;
    c.pattern = "evil-" + std::to_string(i * 7919 % 100000) + (i % 3 ? "-payload" : "/x");
    c.nocase = i % 2 == 0;
    c.regex = i % 10 == 9;
    if (c.regex) c.pattern = "user-agent: bot[0-9]{" + std::to_string(2 + i % 5) + "}x" + std::to_string(i);
    // Most signatures need two patterns, like real ones: the rule is rarely complete.
    content_rules.back().contents.push_back(c);
  }
  s.rules.insert(s.rules.begin(), content_rules.begin(), content_rules.end());
}

std::vector<std::vector<std::uint8_t>> PacketMix(std::size_t n) {
  std::mt19937 rng(7);
  std::vector<std::vector<std::uint8_t>> packets;
  const std::string http = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88\r\n"
                           "Accept: */*\r\n\r\n";
  for (int i = 0; i < 4096; ++i) {
    PacketSpec p;
    const std::uint32_t client = 0xc0000000u + (rng() & 0xffffff);
    p.src = Ip(client);
    switch (rng() % 8) {
      case 0:  // hits a specific rule (or the set) when its port matches
      case 1: {
        const std::size_t k = rng() % n;
        p.dst = Ip(SpecificAddress(k) + (k % 4 ? 0 : rng() % 256));
        p.dst_port = static_cast<std::uint16_t>(1000 + k % 50);
        break;
      }
      case 2:
        p.protocol = 17;
        p.dst = Ip(0x08080808u);
        p.dst_port = 53;
        break;
      case 3:
      case 4:
        p.dst = Ip(0x5db8d822u + (rng() % 64));
        p.dst_port = rng() % 2 ? 443 : 80;
        p.tcp_flags = 0x18;
        p.payload = http;
        break;
      case 5:
        p.src = Ip(0xc0a80000u + (rng() & 0xffff));
        p.dst = Ip(0x0a000000u + (rng() & 0xffffff));
        p.dst_port = 22;
        break;
      case 6:
        p.dst = Ip(0x0b000000u + (rng() & 0xffffff));
        p.dst_port = static_cast<std::uint16_t>(1024 + rng() % 60000);
        break;
      default:
        p.src = "2001:db8::" + std::to_string(rng() % 1000);
        p.dst = "2001:db8:1::1";
        p.dst_port = 443;
        break;
    }
    p.src_port = static_cast<std::uint16_t>(32768 + rng() % 28000);
    packets.push_back(BuildPacket(p));
  }
  return packets;
}

void Run(benchmark::State& state, const RulesSection& section, std::size_t n) {
  auto rules = verdictd::rules::CompileOrThrow(section);
  verdictd::rules::RuleEngine engine(rules);
  const auto packets = PacketMix(n);
  std::vector<verdictd::queueio::PacketView> views;
  for (const auto& p : packets) views.push_back(verdictd::rules::testing::ViewOf(p));
  std::size_t i = 0;
  std::uint64_t matched = 0;
  for (auto _ : state) {
    const auto decision = engine.Decide(views[i], 1);
    matched += decision.rule >= 0;
    benchmark::DoNotOptimize(decision);
    i = (i + 1) & (views.size() - 1);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["matched_pct"] = 100.0 * static_cast<double>(matched) / static_cast<double>(state.iterations());
  state.counters["scans_pct"] = 100.0 * static_cast<double>(engine.counters().content_scans.value()) /
                                static_cast<double>(state.iterations());
}

void BM_Rules_HeaderOnly(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Run(state, HeaderRules(n), n);
}
BENCHMARK(BM_Rules_HeaderOnly)->Arg(10)->Arg(1000)->Arg(100000);

void BM_Rules_SetPrefixes(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Run(state, SetRules(n), n);
}
BENCHMARK(BM_Rules_SetPrefixes)->Arg(10)->Arg(1000)->Arg(100000);

void BM_Rules_Content1000(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  RulesSection s = HeaderRules(n);
  AddContent(s, 1000);
  Run(state, s, n);
}
BENCHMARK(BM_Rules_Content1000)->Arg(10)->Arg(1000)->Arg(100000);

}  // namespace

// What a reload's hand-over costs a worker (RuleEngine::TakeStateFrom, run
// once per reload on the worker's thread, holding up that one batch): the
// default tables (65,536 rate buckets and 65,536 flows) with range(0)
// distinct sources already holding a bucket. Reported per hand-over.
void BM_Rules_HandOver(benchmark::State& state) {
  RulesSection section;
  RuleSpec limit = Rule("limit", ActionKind::kRateLimit);
  limit.action.rate = 10;
  limit.action.burst = 20;
  section.rules.push_back(limit);
  auto rules = verdictd::rules::CompileOrThrow(section);
  verdictd::rules::RuleEngine previous(rules);
  const auto sources = static_cast<std::uint32_t>(state.range(0));
  for (std::uint32_t i = 0; i < sources; ++i) {
    auto bytes = BuildPacket({.src = Ip(0x0a000000u + i), .protocol = 17});
    previous.Decide(verdictd::rules::testing::ViewOf(bytes), 1'000'000'000);
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto next = std::make_unique<verdictd::rules::RuleEngine>(rules);
    state.ResumeTiming();
    next->TakeStateFrom(previous);
    benchmark::DoNotOptimize(next.get());
    state.PauseTiming();
    next.reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_Rules_HandOver)->Arg(0)->Arg(1000)->Arg(50000)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
