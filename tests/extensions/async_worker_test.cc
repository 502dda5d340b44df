// The worker with asynchronous verdicts from the real extension host: an
// arena completes packets out of order on other threads while the worker
// receives, defers, polls and flushes. Checked against the kernel model: no
// packet gets two verdicts or none, and no batch verdict covers a pending id.
#include <gtest/gtest.h>
#include <linux/netfilter.h>

#include <thread>

#include "kernel_model.h"
#include "test_dir.h"
#include "verdictd/extensions/host.h"
#include "verdictd/queueio/memory_queue.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/worker.h"
#include "verdictd/test_fixtures/netlink_messages.h"

namespace verdictd::extensions {
namespace {

using service::testing::KernelModel;
using testing::IsRoot;
using testing::TestDir;

std::vector<std::vector<std::uint8_t>> Datagrams(std::uint32_t first, std::size_t count) {
  test_fixtures::SyntheticPacket packet;
  packet.hook = NF_INET_FORWARD;
  packet.payload = test_fixtures::FillerPayload(60);
  return test_fixtures::BuildPacketDatagrams(first, count, packet);
}

struct AsyncSetup {
  TestDir dir;
  config::Config config;
  std::shared_ptr<ExtensionHost> host;
  std::unique_ptr<service::PolicyExchange> exchange;
  metrics::WorkerCounters counters;

  AsyncSetup(const char* mode, std::uint32_t slots, std::uint32_t timeout_ms) {
    dir.Add("asyncprobe");
    config.extensions.directory = dir.path();
    config.extensions.pending_slots = slots;
    config.extensions.pending_timeout_ms = timeout_ms;
    config.extensions.overflow_verdict.kind = config::VerdictKind::kRepeat;
    config.extensions.timeout_verdict.kind = config::VerdictKind::kStop;
    config.extensions.chain.push_back({"asyncprobe", "", mode, 0, true});
    host = std::make_shared<ExtensionHost>(config.extensions, HostOptions{1, 0});
    std::vector<std::string> errors;
    auto plan = host->Prepare(config.extensions, errors);
    EXPECT_TRUE(errors.empty());
    ExtensionHost* h = host.get();
    exchange = std::make_unique<service::PolicyExchange>(
        service::BuildPolicy(config, 1, 1,
                             [h, plan](const config::Config&, std::size_t w) { return h->MakeChain(plan, w); },
                             host),
        1);
  }
  ~AsyncSetup() { exchange.reset(); }
};

service::WorkerOptions Options() {
  service::WorkerOptions options;
  options.batch_size = 256;
  options.flush_interval_us = 1000;
  return options;
}

KernelModel Check(const queueio::MemoryQueue& queue, std::size_t packets) {
  KernelModel kernel;
  kernel.QueueRange(1, packets);
  kernel.ApplyAll(queue.sent());
  EXPECT_TRUE(kernel.problems().empty()) << kernel.problems().front();
  EXPECT_TRUE(kernel.still_queued().empty()) << kernel.still_queued().size() << " without a verdict";
  EXPECT_EQ(kernel.verdicts().size(), packets);
  return kernel;
}

TEST(AsyncWorkerThread, out_of_order_completions_give_each_packet_one_verdict) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories";
  constexpr std::size_t kPackets = 3000;
  AsyncSetup s("complete", 64, 60'000);
  queueio::MemoryQueue queue(Datagrams(1, kPackets), 64, false);
  service::Worker worker(Options(), queue, queue, *s.exchange, s.counters);
  for (int i = 0; i < 2'000'000; ++i) {
    const auto status = worker.RunOnce(false);
    if (status == queueio::ReceiveStatus::kWouldBlock && worker.deferred() == 0) break;
    if (status == queueio::ReceiveStatus::kWouldBlock) std::this_thread::yield();
  }
  worker.Flush();
  const KernelModel kernel = Check(queue, kPackets);
  std::size_t drops = 0, accepts = 0, repeats = 0;
  for (const auto& [id, code] : kernel.verdicts()) {
    if (code == NF_REPEAT) {
      ++repeats;  // overflow: 64 slots for a burst of 64 packets per receive
    } else if (id % 3 == 0) {
      EXPECT_EQ(code, static_cast<std::uint32_t>(NF_DROP)) << id;
      ++drops;
    } else {
      EXPECT_EQ(code, static_cast<std::uint32_t>(NF_ACCEPT)) << id;
      ++accepts;
    }
  }
  EXPECT_EQ(drops + accepts + repeats, kPackets);
  EXPECT_GT(drops + accepts, 0u);
  EXPECT_EQ(worker.deferred(), 0u);
}

TEST(AsyncWorkerThread, completions_inside_process_are_not_lost) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories";
  constexpr std::size_t kPackets = 500;
  AsyncSetup s("inline", 256, 60'000);
  queueio::MemoryQueue queue(Datagrams(1, kPackets), 64, false);
  service::Worker worker(Options(), queue, queue, *s.exchange, s.counters);
  for (int i = 0; i < 100000; ++i) {
    if (worker.RunOnce(false) == queueio::ReceiveStatus::kWouldBlock && worker.deferred() == 0) break;
  }
  const KernelModel kernel = Check(queue, kPackets);
  for (const auto& [id, code] : kernel.verdicts()) {
    EXPECT_EQ(code, static_cast<std::uint32_t>(id % 3 == 0 ? NF_DROP : NF_ACCEPT)) << id;
  }
}

TEST(AsyncWorkerThread, deadline_gives_the_timeout_verdict) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories";
  constexpr std::size_t kPackets = 100;
  AsyncSetup s("never", 256, 5);
  queueio::MemoryQueue queue(Datagrams(1, kPackets), 64, false);
  service::Worker worker(Options(), queue, queue, *s.exchange, s.counters);
  for (int i = 0; i < 10'000'000; ++i) {
    if (worker.RunOnce(false) == queueio::ReceiveStatus::kWouldBlock && worker.deferred() == 0) break;
  }
  const KernelModel kernel = Check(queue, kPackets);
  for (const auto& [id, code] : kernel.verdicts()) EXPECT_EQ(code, static_cast<std::uint32_t>(NF_STOP)) << id;
  EXPECT_EQ(s.host->pending(0), 0u);
}

TEST(AsyncWorkerThread, stop_gives_every_pending_packet_a_verdict) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories";
  constexpr std::size_t kPackets = 128;
  AsyncSetup s("never", 256, 300);
  queueio::MemoryQueue queue(Datagrams(1, kPackets), 64, false);
  service::Worker worker(Options(), queue, queue, *s.exchange, s.counters);
  worker.RunOnce(false);
  worker.RunOnce(false);
  EXPECT_EQ(worker.deferred(), kPackets);
  worker.RequestStop();
  EXPECT_EQ(worker.Run(), service::WorkerExit::kStopped);
  const KernelModel kernel = Check(queue, kPackets);
  for (const auto& [id, code] : kernel.verdicts()) EXPECT_EQ(code, static_cast<std::uint32_t>(NF_STOP)) << id;
}

}  // namespace
}  // namespace verdictd::extensions
