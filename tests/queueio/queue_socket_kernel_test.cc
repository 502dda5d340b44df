// Real-kernel tests of QueueSocket. Each test moves the process into a fresh
// network namespace, queues UDP to 127.0.0.1:9999 with iptables and talks to
// nfnetlink_queue for real. Skipped (with the reason) when not root.
#include "verdictd/queueio/queue_socket.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <chrono>
#include <optional>
#include <cstdio>
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

// Whether the kernel can attach conntrack to queued packets, asked
// independently of QueueSocket: nfnetlink_queue takes the conntrack flag only
// when nf_conntrack_netlink registered its queue glue, which exists only in
// kernels built with CONFIG_NETFILTER_NETLINK_GLUE_CT (ctnetlink alone, which
// answers conntrack dumps, is not enough). Empty when the kernel's
// configuration cannot be read.
std::optional<bool> ConntrackGlueConfigured() {
  std::string config;
  for (const char* command : {"zcat /proc/config.gz 2>/dev/null",
                              "cat /boot/config-$(uname -r) 2>/dev/null"}) {
    FILE* pipe = popen(command, "r");
    if (pipe == nullptr) continue;
    char line[512];
    while (std::fgets(line, sizeof line, pipe) != nullptr) config += line;
    pclose(pipe);
    if (!config.empty()) break;
  }
  if (config.empty()) return std::nullopt;
  const bool glue = config.find("\nCONFIG_NETFILTER_NETLINK_GLUE_CT=y") != std::string::npos;
  const bool ctnetlink_built_in = config.find("\nCONFIG_NF_CT_NETLINK=y") != std::string::npos;
  return glue && (ctnetlink_built_in || access("/sys/module/nf_conntrack_netlink", F_OK) == 0);
}

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

  // Receives until `count` packets were parsed, an error message came (when
  // `errors` is given) or `wait_ms` passed.
  static std::vector<PacketView> ReceivePackets(QueueSocket& socket, std::size_t count,
                                                std::vector<int>* errors = nullptr,
                                                int wait_ms = 3000) {
    std::vector<PacketView> packets;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    ReceiveBatch batch;
    while (packets.size() < count && (errors == nullptr || errors->empty()) &&
           std::chrono::steady_clock::now() < deadline) {
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

// Whichever the kernel has, the bind must agree with an independent probe:
// supported and bound with ctnetlink, refused by name without it.
TEST_F(QueueSocketKernel, conntrack_flag_follows_the_kernels_ctnetlink) {
  QueueOptions o = Options();
  o.conntrack = true;
  const std::optional<bool> configured = ConntrackGlueConfigured();
  if (!configured) GTEST_SKIP() << "the kernel configuration (/proc/config.gz) cannot be read";
  const bool present = *configured;
  std::printf("conntrack queue glue in this kernel: %s\n", present ? "yes" : "no");
  if (present) {
    auto socket = QueueSocket::Open(o);
    EXPECT_TRUE(socket->bind_report().conntrack_supported);
    EXPECT_TRUE(ReadKernelQueueStats(kQueue));
    return;
  }
  try {
    auto socket = QueueSocket::Open(o);
    FAIL() << "the conntrack flag was accepted although the kernel has no ctnetlink";
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
  auto packets = ReceivePackets(*socket, 200, nullptr, 1000);
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

// The kernel applies what the encoder wrote: marks, replaced payloads,
// queue-to-N, repeat, and (ignored without conntrack support) connmark.
TEST_F(QueueSocketKernel, kernel_applies_mark_from_verdict) {
  // Unmarked packets die at INPUT: only a verdict's mark lets them through.
  ASSERT_EQ(testing::Run("iptables -w -A INPUT -i lo -p udp --dport 9999 -m mark ! --mark 0x42 -j DROP"), 0);
  auto socket = QueueSocket::Open(Options());
  SendUdp(kPort, 2, 10);
  auto packets = ReceivePackets(*socket, 2);
  ASSERT_EQ(packets.size(), 2u);
  Verdict marked = Verdict::Accept();
  marked.set_mark = true;
  marked.mark = 0x42;
  std::vector<std::uint8_t> buf(512);
  std::size_t n = EncodeVerdict(buf, kQueue, packets[0].id, marked, 1);
  n += EncodeVerdict(std::span(buf).subspan(n), kQueue, packets[1].id, Verdict::Accept(), 2);
  ASSERT_EQ(socket->Send(std::span(buf).first(n)), SendStatus::kOk);
  EXPECT_EQ(DrainUdp(receiver_, 1000), 1);
  // A marked batch verdict too.
  SendUdp(kPort, 3, 10);
  packets = ReceivePackets(*socket, 3);
  ASSERT_EQ(packets.size(), 3u);
  n = EncodeBatchVerdict(buf, kQueue, packets[2].id, marked, 3);
  ASSERT_EQ(socket->Send(std::span(buf).first(n)), SendStatus::kOk);
  EXPECT_EQ(DrainUdp(receiver_, 1000), 3);
}

TEST_F(QueueSocketKernel, kernel_applies_replacement_payload) {
  auto socket = QueueSocket::Open(Options());
  SendUdp(kPort, 1, 16);  // 16 x 'x'
  auto packets = ReceivePackets(*socket, 1);
  ASSERT_EQ(packets.size(), 1u);
  std::vector<std::uint8_t> replaced(packets[0].payload.begin(), packets[0].payload.end());
  ASSERT_EQ(replaced.size(), 20u + 8 + 16);
  for (std::size_t i = 28; i < replaced.size(); ++i) replaced[i] = 'y';
  replaced[26] = replaced[27] = 0;  // UDP checksum 0: not computed (IPv4)
  Verdict v = Verdict::Accept();
  v.replacement = replaced;
  VerdictBatcher batcher(kQueue, 4096, 64);
  ASSERT_EQ(batcher.Add(packets[0].id, v), AddStatus::kOk);
  ASSERT_TRUE(batcher.Flush(*socket));
  char data[64] = {};
  for (int i = 0; i < 100 && recv(receiver_, data, sizeof data, MSG_DONTWAIT) < 0; ++i) usleep(10000);
  EXPECT_EQ(std::string(data, 16), std::string(16, 'y'));
}

TEST_F(QueueSocketKernel, kernel_moves_packet_to_another_queue) {
  auto first = QueueSocket::Open(Options());
  QueueOptions o = Options();
  o.queue_num = 4;
  auto second = QueueSocket::Open(o);
  SendUdp(kPort, 1, 10);
  auto packets = ReceivePackets(*first, 1);
  ASSERT_EQ(packets.size(), 1u);
  std::vector<std::uint8_t> buf(256);
  std::size_t n = EncodeVerdict(buf, kQueue, packets[0].id, Verdict::ToQueue(4), 1);
  ASSERT_EQ(first->Send(std::span(buf).first(n)), SendStatus::kOk);
  auto moved = ReceivePackets(*second, 1);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].queue_num, 4);
  EXPECT_EQ(DrainUdp(receiver_, 100), 0);
  n = EncodeVerdict(buf, 4, moved[0].id, Verdict::Accept(), 2);
  ASSERT_EQ(second->Send(std::span(buf).first(n)), SendStatus::kOk);
  EXPECT_EQ(DrainUdp(receiver_, 1000), 1);
}

TEST_F(QueueSocketKernel, repeat_queues_the_packet_again) {
  auto socket = QueueSocket::Open(Options());
  SendUdp(kPort, 1, 10);
  auto packets = ReceivePackets(*socket, 1);
  ASSERT_EQ(packets.size(), 1u);
  Verdict repeat;
  repeat.kind = VerdictKind::kRepeat;
  std::vector<std::uint8_t> buf(256);
  std::size_t n = EncodeVerdict(buf, kQueue, packets[0].id, repeat, 1);
  ASSERT_EQ(socket->Send(std::span(buf).first(n)), SendStatus::kOk);
  auto again = ReceivePackets(*socket, 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_GT(again[0].id, packets[0].id);
  n = EncodeVerdict(buf, kQueue, again[0].id, Verdict::Accept(), 2);
  ASSERT_EQ(socket->Send(std::span(buf).first(n)), SendStatus::kOk);
  EXPECT_EQ(DrainUdp(receiver_, 1000), 1);
}

TEST_F(QueueSocketKernel, connmark_verdict_is_accepted) {
  auto socket = QueueSocket::Open(Options());
  SendUdp(kPort, 1, 10);
  auto packets = ReceivePackets(*socket, 1);
  ASSERT_EQ(packets.size(), 1u);
  Verdict v = Verdict::Accept();
  v.set_connmark = true;
  v.connmark = 5;
  std::vector<std::uint8_t> buf(256);
  // Sent as is: without nf_conntrack_netlink the kernel ignores NFQA_CT.
  std::size_t n = EncodeVerdict(buf, kQueue, packets[0].id, v, 1);
  ASSERT_EQ(socket->Send(std::span(buf).first(n)), SendStatus::kOk);
  EXPECT_EQ(DrainUdp(receiver_, 1000), 1);
  std::vector<int> errors;
  ReceivePackets(*socket, 1, &errors, 300);
  EXPECT_TRUE(errors.empty());
}

TEST_F(QueueSocketKernel, deferred_packet_is_not_covered_by_a_batch) {
  auto socket = QueueSocket::Open(Options());
  SendUdp(kPort, 5, 10);
  auto packets = ReceivePackets(*socket, 5);
  ASSERT_EQ(packets.size(), 5u);
  VerdictBatcher batcher(kQueue, 4096, 64);
  for (std::size_t i = 0; i < 5; ++i) {
    if (i == 2) {
      ASSERT_EQ(batcher.Defer(packets[i].id), AddStatus::kOk);
    } else {
      ASSERT_EQ(batcher.Add(packets[i].id, Verdict::Accept()), AddStatus::kOk);
    }
  }
  ASSERT_TRUE(batcher.Flush(*socket));
  EXPECT_EQ(DrainUdp(receiver_, 1000), 4);
  EXPECT_EQ(ReadKernelQueueStats(kQueue)->queue_total, 1u);
  ASSERT_EQ(batcher.Add(packets[2].id, Verdict::Accept()), AddStatus::kOk);
  ASSERT_TRUE(batcher.Flush(*socket));
  EXPECT_EQ(DrainUdp(receiver_, 1000), 1);
  EXPECT_EQ(ReadKernelQueueStats(kQueue)->queue_total, 0u);
  std::vector<int> errors;
  ReceivePackets(*socket, 1, &errors, 300);
  EXPECT_TRUE(errors.empty()) << "the kernel refused a verdict: " << errors.front();
}

// Packets queued between the bind and its acknowledgement must not be lost:
// with traffic already flowing, the first packet received has id 1.
TEST_F(QueueSocketKernel, no_packet_lost_while_binding) {
  ASSERT_EQ(testing::Run("iptables -w -F OUTPUT && iptables -w -A OUTPUT -o lo -p udp --dport 9999 "
                         "-j NFQUEUE --queue-num 3 --queue-bypass"),
            0);
  pid_t child = fork();
  if (child == 0) {
    for (int i = 0; i < 20000; ++i) SendUdp(kPort, 1, 10);
    _exit(0);
  }
  // Traffic flows before the bind (bypassing the unbound queue): without a
  // datagram seen at the receiver the test would prove nothing.
  pollfd first{receiver_, POLLIN, 0};
  ASSERT_EQ(poll(&first, 1, 3000), 1) << "the sender never started";
  auto socket = QueueSocket::Open(Options());
  auto packets = ReceivePackets(*socket, 1);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_GE(packets.size(), 1u);
  EXPECT_EQ(packets[0].id, 1u);
  for (std::size_t i = 1; i < packets.size(); ++i) EXPECT_EQ(packets[i].id, packets[i - 1].id + 1);
  std::printf("packets that arrived before the bind was acknowledged: %zu\n",
              socket->bind_report().early_datagrams);
}

TEST_F(QueueSocketKernel, missing_capability_gets_a_clear_error) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    std::string message = "no error";
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
      message = "setresuid failed";
    } else {
      try {
        auto socket = QueueSocket::Open(Options());
      } catch (const QueueError& e) {
        message = e.what();
      }
    }
    (void)!write(fds[1], message.data(), message.size());
    _exit(0);
  }
  close(fds[1]);
  char buf[512] = {};
  std::string message;
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) message.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  waitpid(child, nullptr, 0);
  EXPECT_NE(message.find("queue 3"), std::string::npos) << message;
  EXPECT_NE(message.find("CAP_NET_ADMIN"), std::string::npos) << message;
}

TEST_F(QueueSocketKernel, one_send_carries_a_full_batcher_buffer) {
  auto socket = QueueSocket::Open(Options());
  constexpr int kPackets = 600;
  SendUdp(kPort, kPackets, 10);
  auto packets = ReceivePackets(*socket, kPackets);
  ASSERT_EQ(packets.size(), static_cast<std::size_t>(kPackets));
  // Marked single verdicts that differ per packet: no batch message possible.
  VerdictBatcher batcher(kQueue, socket->max_send_bytes(), 4096);
  std::size_t added = 0;
  for (const auto& p : packets) {
    Verdict v = Verdict::Accept();
    v.set_mark = true;
    v.mark = p.id;
    if (batcher.Add(p.id, v) == AddStatus::kNeedsFlush) break;
    ++added;
  }
  ASSERT_TRUE(batcher.Flush(*socket));
  EXPECT_EQ(batcher.stats().single_messages, added);
  EXPECT_EQ(DrainUdp(receiver_, 1000), static_cast<int>(added));
  for (std::size_t i = added; i < packets.size(); ++i) {
    ASSERT_EQ(batcher.Add(packets[i].id, Verdict::Accept()), AddStatus::kOk);
  }
  ASSERT_TRUE(batcher.Flush(*socket));
  EXPECT_EQ(DrainUdp(receiver_, 1000), kPackets - static_cast<int>(added));
  EXPECT_EQ(batcher.stats().send_failures.load(), 0u);
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
