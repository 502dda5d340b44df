#include <gtest/gtest.h>

#include <vector>

#include "test_dir.h"
#include "verdictd/extensions/checksum.h"
#include "verdictd/extensions/host.h"
#include "verdictd/queueio/parser.h"
#include "verdictd/test_fixtures/fixtures.h"

namespace verdictd::extensions {
namespace {

using testing::IsRoot;
using testing::TestDir;

#define REQUIRE_ROOT() \
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories"

// An IPv4/UDP packet with valid checksums.
std::vector<std::uint8_t> UdpPacket() {
  std::vector<std::uint8_t> bytes(20 + 8 + 12, 0);
  std::uint8_t* const p = bytes.data();
  if (p == nullptr) return bytes;
  p[0] = 0x45;
  p[8] = 64;
  p[9] = 17;
  p[12] = 10, p[15] = 1, p[16] = 10, p[19] = 2;
  p[20] = 0x30, p[21] = 0x39, p[22] = 0x27, p[23] = 0x0f;
  for (std::size_t i = 28; i < bytes.size(); ++i) p[i] = static_cast<std::uint8_t>('a' + i % 26);
  RepairChecksums(bytes);
  return bytes;
}

queueio::PacketView View(const std::vector<std::uint8_t>& bytes, std::uint32_t mark, std::uint32_t id = 1) {
  queueio::PacketView v;
  v.id = id;
  v.has_mark = mark != 0;
  v.mark = mark;
  v.payload = bytes;
  v.original_length = static_cast<std::uint32_t>(bytes.size());
  return v;
}

struct Chain {
  TestDir dir;
  config::ExtensionsSection section;
  std::unique_ptr<ExtensionHost> host;
  std::shared_ptr<const ChainPlan> plan;
  std::unique_ptr<decider::Decider> decider;

  explicit Chain(std::vector<config::ExtensionEntry> entries) {
    section.directory = dir.path();
    for (const auto& e : entries) dir.Add(e.name);
    section.chain = std::move(entries);
    section.end_verdict.kind = config::VerdictKind::kRepeat;
    host = std::make_unique<ExtensionHost>(section, HostOptions{});
    std::vector<std::string> errors;
    plan = host->Prepare(section, errors);
    EXPECT_TRUE(errors.empty()) << errors.front();
    decider = host->MakeChain(plan, 0);
  }
  ~Chain() {
    decider.reset();
    plan.reset();
  }
  queueio::Verdict Decide(std::uint32_t mark) {
    const auto bytes = UdpPacket();
    return decider->Decide(View(bytes, mark), 0);
  }
  std::string Calls(const std::string& name) { return host->Info(name).text; }
};

config::ExtensionEntry E(const char* name, const char* params, std::uint32_t group = 0) {
  return config::ExtensionEntry{name, "", params, group, true};
}

TEST(Chain, calls_extensions_in_order_until_one_decides) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "next"), E("probe_b", "drop"), E("probe_c", "accept")});
  EXPECT_EQ(chain.Decide(0).kind, queueio::VerdictKind::kDrop);
  EXPECT_EQ(chain.Calls("probe_a"), "calls 1");
  EXPECT_EQ(chain.Calls("probe_b"), "calls 1");
  EXPECT_EQ(chain.Calls("probe_c"), "calls 0");
}

TEST(Chain, gives_the_end_verdict_when_every_extension_passes) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "next"), E("probe_b", "next")});
  const queueio::Verdict v = chain.Decide(0);
  EXPECT_EQ(v.kind, queueio::VerdictKind::kRepeat);
  EXPECT_FALSE(v.set_mark);
}

TEST(Chain, group_masks_select_by_mark_and_zero_means_every_packet) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "drop", 0x1), E("probe_b", "queue:7", 0x6), E("probe_c", "accept", 0)});
  EXPECT_EQ(chain.Decide(0x1).kind, queueio::VerdictKind::kDrop);
  const queueio::Verdict q = chain.Decide(0x4);
  EXPECT_EQ(q.kind, queueio::VerdictKind::kQueue);
  EXPECT_EQ(q.target_queue, 7);
  EXPECT_EQ(chain.Decide(0x8).kind, queueio::VerdictKind::kAccept);
  EXPECT_EQ(chain.Decide(0).kind, queueio::VerdictKind::kAccept);
  EXPECT_EQ(chain.Calls("probe_a"), "calls 1");
  EXPECT_EQ(chain.Calls("probe_b"), "calls 1");
  EXPECT_EQ(chain.Calls("probe_c"), "calls 2");
  // A group changed by control takes effect at the next packet.
  ASSERT_TRUE(chain.host->Group("probe_a", 0x8).ok);
  EXPECT_EQ(chain.Decide(0x8).kind, queueio::VerdictKind::kDrop);
}

TEST(Chain, a_mark_set_with_next_steers_later_groups_and_the_verdict) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "next,mark=2"), E("probe_b", "drop", 0x1), E("probe_c", "next", 0x2)});
  const queueio::Verdict v = chain.Decide(0x1);
  EXPECT_EQ(v.kind, queueio::VerdictKind::kRepeat);  // b skipped (mark now 2), c passed
  EXPECT_TRUE(v.set_mark);
  EXPECT_EQ(v.mark, 2u);
  EXPECT_EQ(chain.Calls("probe_b"), "calls 0");
  EXPECT_EQ(chain.Calls("probe_c"), "calls 1");
}

TEST(Chain, a_chain_whose_groups_exclude_the_packet_gives_the_end_verdict_untouched) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "drop", 0x1), E("probe_b", "drop", 0x2)});
  const queueio::Verdict v = chain.Decide(0x4);
  EXPECT_EQ(v.kind, queueio::VerdictKind::kRepeat);
  EXPECT_FALSE(v.set_mark);
  EXPECT_EQ(chain.Calls("probe_a"), "calls 0");
  EXPECT_EQ(chain.Calls("probe_b"), "calls 0");
  EXPECT_EQ(chain.plan->links[0]->counters().workers[0].calls.value(), 0u);
  // The first link that matches still runs after skipped ones.
  EXPECT_EQ(chain.Decide(0x2).kind, queueio::VerdictKind::kDrop);
  EXPECT_EQ(chain.Calls("probe_b"), "calls 1");
}

TEST(Chain, the_view_carries_the_hardware_address) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "hwaddr")});
  const auto bytes = UdpPacket();
  queueio::PacketView view = View(bytes, 0);
  const std::uint8_t mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x5e};
  view.hw_addr = std::span<const std::uint8_t>(mac, sizeof mac);
  queueio::Verdict v = chain.decider->Decide(view, 0);
  EXPECT_TRUE(v.set_mark);
  EXPECT_EQ(v.mark, 6u << 24 | 0x02u << 16 | 0x5eu);
  // A packet without one: length 0, no stale bytes from the last packet.
  view.hw_addr = {};
  v = chain.decider->Decide(view, 0);
  EXPECT_EQ(v.mark, 0u);
}

TEST(Chain, the_hardware_address_of_a_captured_input_packet_reaches_the_extension) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "hwaddr")});
  // Captured at INPUT on lo (an all-zero Ethernet address): give it
  // distinct bytes where the parser finds them, then parse again.
  auto bytes = test_fixtures::LoadFixture("input_timestamp");
  queueio::PacketView view;
  ASSERT_EQ(queueio::ParsePacketMessage(bytes, view).status, queueio::ParseStatus::kOk);
  ASSERT_EQ(view.hw_addr.size(), 6u);
  const std::size_t at = static_cast<std::size_t>(view.hw_addr.data() - bytes.data());
  bytes[at] = 0xaa;
  bytes[at + 5] = 0x55;
  ASSERT_EQ(queueio::ParsePacketMessage(bytes, view).status, queueio::ParseStatus::kOk);
  const queueio::Verdict v = chain.decider->Decide(view, 0);
  EXPECT_TRUE(v.set_mark);
  EXPECT_EQ(v.mark, 6u << 24 | 0xaau << 16 | 0x55u);
}

TEST(Chain, a_stopped_extension_is_skipped_until_started) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "drop")});
  ASSERT_TRUE(chain.host->Stop("probe_a").ok);
  EXPECT_EQ(chain.Decide(0).kind, queueio::VerdictKind::kRepeat);
  ASSERT_TRUE(chain.host->Start("probe_a").ok);
  EXPECT_EQ(chain.Decide(0).kind, queueio::VerdictKind::kDrop);
  EXPECT_FALSE(chain.host->Start("nope").ok);
}

TEST(Chain, counts_a_bogus_result_as_an_error_and_passes_on) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "bogus"), E("probe_b", "accept")});
  EXPECT_EQ(chain.Decide(0).kind, queueio::VerdictKind::kAccept);
  EXPECT_EQ(chain.plan->links[0]->counters().workers[0].errors.value(), 1u);
  EXPECT_EQ(chain.plan->links[0]->counters().workers[0].calls.value(), 1u);
}

TEST(Chain, altered_sends_the_rewritten_bytes_with_repaired_checksums) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "altered")});
  const auto bytes = UdpPacket();
  const queueio::Verdict v = chain.decider->Decide(View(bytes, 0), 0);
  EXPECT_EQ(v.kind, queueio::VerdictKind::kAccept);
  ASSERT_EQ(v.replacement.size(), bytes.size());
  std::vector<std::uint8_t> out(v.replacement.begin(), v.replacement.end());
  const std::uint8_t last = out[out.size() - 1];
  const std::uint8_t flipped = static_cast<std::uint8_t>(bytes[bytes.size() - 1] ^ 0xff);
  EXPECT_EQ(last, flipped);
  std::vector<std::uint8_t> check = out;
  RepairChecksums(check);  // an already-correct packet does not change
  EXPECT_EQ(check, out);
  EXPECT_NE(out[26] << 8 | out[27], bytes[26] << 8 | bytes[27]);  // the UDP checksum moved
}

TEST(Chain, refuses_to_rewrite_gso_packets) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "altered")});
  const auto bytes = UdpPacket();
  queueio::PacketView v = View(bytes, 0);
  v.skb_info = queueio::kSkbGso;
  const queueio::Verdict verdict = chain.decider->Decide(v, 0);
  EXPECT_EQ(verdict.kind, queueio::VerdictKind::kAccept);
  EXPECT_TRUE(verdict.replacement.empty());
  EXPECT_EQ(chain.plan->links[0]->counters().workers[0].errors.value(), 1u);
}

TEST(Chain, control_commands_list_info_and_refuse_unknown_names) {
  REQUIRE_ROOT();
  Chain chain({E("probe_a", "next", 0x10)});
  const CommandResult list = chain.host->List();
  EXPECT_NE(list.text.find("probe_a 0.1.0 started group=0x10"), std::string::npos) << list.text;
  EXPECT_FALSE(chain.host->Info("probe_z").ok);
  EXPECT_FALSE(chain.host->Del("probe_z").ok);
  EXPECT_TRUE(chain.host->Reset("probe_a").ok);
}

}  // namespace
}  // namespace verdictd::extensions
