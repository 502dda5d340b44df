// Real-kernel tests of QueueSocket. Each test moves the process into a fresh
// network namespace, queues UDP to 127.0.0.1:9999 with iptables and talks to
// nfnetlink_queue for real. Skipped (with the reason) when not root.
#include "verdictd/queueio/queue_socket.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "netns.h"
#include "verdictd/queueio/kernel_queue_stats.h"
#include "verdictd/queueio/parser.h"
#include "verdictd/queueio/verdict_batcher.h"
#include "verdictd/queueio/verdict_encoder.h"

namespace verdictd::queueio {
namespace {

using testing::DrainUdp;
using testing::EnterFreshNetns;
using testing::KernelTestsUnavailable;
using testing::SendUdp;
using testing::UdpReceiver;

constexpr std::uint16_t kPort = 9999;
constexpr std::uint16_t kQueue = 3;

class QueueSocketKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = KernelTestsUnavailable();
    if (!why.empty()) GTEST_SKIP() << why;
    const std::string err = EnterFreshNetns();
    ASSERT_TRUE(err.empty()) << err;
    ASSERT_EQ(testing::Run("iptables -w -A OUTPUT -o lo -p udp --dport " + std::to_string(kPort) +
                  " -j NFQUEUE --queue-num " + std::to_string(kQueue)),
              0);
    receiver_ = UdpReceiver(kPort);
    ASSERT_GE(receiver_, 0);
  }
  void TearDown() override {
    if (receiver_ >= 0) close(receiver_);
  }

  static QueueOptions Options() {
    QueueOptions o;
    o.queue_num = kQueue;
    o.fail_open = false;
    o.receive_buffer_bytes = 1 << 20;
    o.batch_size = 16;
    return o;
  }

  // Receives until `count` packets were parsed or 3 s passed.
  static std::vector<PacketView> ReceivePackets(QueueSocket& socket, std::size_t count,
                                                std::vector<int>* errors = nullptr) {
    std::vector<PacketView> packets;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    ReceiveBatch batch;
    while (packets.size() < count && std::chrono::steady_clock::now() < deadline) {
      const ReceiveStatus st = socket.Receive(batch, true, 100);
      if (st != ReceiveStatus::kOk) continue;
      for (const Datagram& d : batch.datagrams) {
        ForEachNetlinkMessage(d.bytes, [&](std::span<const std::uint8_t> m) {
          PacketView view;
          const ParseResult r = ParsePacketMessage(m, view);
          if (r.status == ParseStatus::kOk) packets.push_back(view);
          if (r.status == ParseStatus::kNetlinkError && errors) errors->push_back(r.error_code);
        });
      }
    }
    return packets;
  }

  int receiver_ = -1;
};

TEST_F(QueueSocketKernel, binds_receives_and_accepts) {
  auto socket = QueueSocket::Open(Options());
  EXPECT_TRUE(socket->bind_report().receive_buffer_forced);
  EXPECT_GE(socket->bind_report().receive_buffer_bytes, std::size_t{1 << 20});
  auto kernel = ReadKernelQueueStats(kQueue);
  ASSERT_TRUE(kernel);
  EXPECT_EQ(kernel->peer_portid, socket->bind_report().portid);
  EXPECT_EQ(kernel->copy_mode, 2u);
  EXPECT_EQ(kernel->copy_range, 0xffffu - 4);  // the kernel caps it to fit one attribute

  SendUdp(kPort, 5, 100);
  auto packets = ReceivePackets(*socket, 5);
  ASSERT_EQ(packets.size(), 5u);
  for (std::size_t i = 0; i < packets.size(); ++i) {
    EXPECT_EQ(packets[i].queue_num, kQueue);
    EXPECT_EQ(packets[i].hw_protocol, 0x0800);
    EXPECT_EQ(packets[i].payload.size(), 128u);  // 20 IP + 8 UDP + 100
    EXPECT_EQ(packets[i].original_length, 128u);
    if (i > 0) {
      EXPECT_EQ(packets[i].id, packets[i - 1].id + 1);
    }
  }
  VerdictBatcher batcher(kQueue, 4096, 64);
  for (const auto& p : packets) ASSERT_EQ(batcher.Add(p.id, Verdict::Accept()), AddStatus::kOk);
  ASSERT_TRUE(batcher.Flush(*socket));
  EXPECT_EQ(batcher.stats().batch_messages, 1u);
  EXPECT_EQ(DrainUdp(receiver_, 1000), 5);
  EXPECT_EQ(ReadKernelQueueStats(kQueue)->queue_total, 0u);
}

TEST_F(QueueSocketKernel, drop_verdict_keeps_packets_out) {
  auto socket = QueueSocket::Open(Options());
  SendUdp(kPort, 3, 10);
  auto packets = ReceivePackets(*socket, 3);
  ASSERT_EQ(packets.size(), 3u);
  VerdictBatcher batcher(kQueue, 4096, 64);
  for (const auto& p : packets) ASSERT_EQ(batcher.Add(p.id, Verdict::Drop()), AddStatus::kOk);
  ASSERT_TRUE(batcher.Flush(*socket));
  EXPECT_EQ(DrainUdp(receiver_, 300), 0);
  EXPECT_EQ(ReadKernelQueueStats(kQueue)->queue_total, 0u);
}

TEST_F(QueueSocketKernel, batch_verdict_covers_only_ids_up_to_the_given_one) {
  auto socket = QueueSocket::Open(Options());
  SendUdp(kPort, 6, 10);
  auto packets = ReceivePackets(*socket, 6);
  ASSERT_EQ(packets.size(), 6u);
  std::vector<std::uint8_t> buf(256);
  std::size_t n = EncodeBatchVerdict(buf, kQueue, packets[2].id, Verdict::Accept(), 1);
  ASSERT_GT(n, 0u);
  ASSERT_EQ(socket->Send(std::span(buf).first(n)), SendStatus::kOk);
  EXPECT_EQ(DrainUdp(receiver_, 1000), 3);
  EXPECT_EQ(ReadKernelQueueStats(kQueue)->queue_total, 3u);
  // A single verdict on an id the batch already took: the kernel says ENOENT.
  n = EncodeVerdict(buf, kQueue, packets[1].id, Verdict::Accept(), 2);
  ASSERT_EQ(socket->Send(std::span(buf).first(n)), SendStatus::kOk);
  std::vector<int> errors;
  ReceivePackets(*socket, 1, &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], -ENOENT);
  n = EncodeBatchVerdict(buf, kQueue, packets[5].id, Verdict::Accept(), 3);
  ASSERT_EQ(socket->Send(std::span(buf).first(n)), SendStatus::kOk);
  EXPECT_EQ(DrainUdp(receiver_, 1000), 3);
  EXPECT_EQ(ReadKernelQueueStats(kQueue)->queue_total, 0u);
}

TEST_F(QueueSocketKernel, second_binder_gets_a_clear_busy_error) {
  auto first = QueueSocket::Open(Options());
  try {
    auto second = QueueSocket::Open(Options());
    FAIL() << "second bind succeeded";
  } catch (const QueueError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("queue 3"), std::string::npos) << what;
    EXPECT_NE(what.find("already bound by another process"), std::string::npos) << what;
  }
}

TEST_F(QueueSocketKernel, conntrack_flag_is_refused_clearly_when_unsupported) {
  QueueOptions o = Options();
  o.conntrack = true;
  try {
    auto socket = QueueSocket::Open(o);
    EXPECT_TRUE(socket->bind_report().conntrack_supported);
  } catch (const QueueError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("queue 3"), std::string::npos) << what;
    EXPECT_NE(what.find("nf_conntrack_netlink"), std::string::npos) << what;
    // Nothing was bound by the refused request.
    EXPECT_FALSE(ReadKernelQueueStats(kQueue));
  }
}

TEST_F(QueueSocketKernel, unbind_releases_the_queue) {
  auto socket = QueueSocket::Open(Options());
  ASSERT_TRUE(ReadKernelQueueStats(kQueue));
  socket->Unbind();
  // The unbind is not acknowledged; give the kernel a moment.
  for (int i = 0; i < 50 && ReadKernelQueueStats(kQueue); ++i) usleep(10000);
  EXPECT_FALSE(ReadKernelQueueStats(kQueue));
  socket->Unbind();  // idempotent
  auto again = QueueSocket::Open(Options());
  EXPECT_TRUE(ReadKernelQueueStats(kQueue));
}

TEST_F(QueueSocketKernel, survives_socket_overrun) {
  QueueOptions o = Options();
  o.receive_buffer_bytes = 4096;  // a few messages only
  auto socket = QueueSocket::Open(o);
  SendUdp(kPort, 200, 1000);
  auto kernel = ReadKernelQueueStats(kQueue);
  ASSERT_TRUE(kernel);
  EXPECT_GT(kernel->user_dropped, 0u);
  // What did fit is still delivered and answered; the socket keeps working.
  auto packets = ReceivePackets(*socket, 200);
  ASSERT_GT(packets.size(), 0u);
  ASSERT_LT(packets.size(), 200u);
  VerdictBatcher batcher(kQueue, 4096, 1024);
  for (const auto& p : packets) ASSERT_EQ(batcher.Add(p.id, Verdict::Accept()), AddStatus::kOk);
  ASSERT_TRUE(batcher.Flush(*socket));
  EXPECT_EQ(DrainUdp(receiver_, 1000), static_cast<int>(packets.size()));
  SendUdp(kPort, 2, 10);
  packets = ReceivePackets(*socket, 2);
  ASSERT_EQ(packets.size(), 2u);
  for (const auto& p : packets) ASSERT_EQ(batcher.Add(p.id, Verdict::Accept()), AddStatus::kOk);
  ASSERT_TRUE(batcher.Flush(*socket));
  EXPECT_EQ(DrainUdp(receiver_, 1000), 2);
}

TEST_F(QueueSocketKernel, receive_times_out_when_idle) {
  auto socket = QueueSocket::Open(Options());
  ReceiveBatch batch;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(socket->Receive(batch, true, 50), ReceiveStatus::kWouldBlock);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(40));
  EXPECT_EQ(socket->Receive(batch, false, 0), ReceiveStatus::kWouldBlock);
}

}  // namespace
}  // namespace verdictd::queueio
