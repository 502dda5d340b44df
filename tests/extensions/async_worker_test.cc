// The worker with asynchronous verdicts from the real extension host: an
// arena completes packets out of order on other threads while the worker
// receives, defers, polls and flushes. Checked against the kernel model: no
// packet gets two verdicts or none, and no batch verdict covers a pending id.
#include <gtest/gtest.h>
#include <linux/netfilter.h>

#include <unistd.h>

#include <chrono>
#include <string>
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
  std::shared_ptr<const ChainPlan> plan;
  std::unique_ptr<service::PolicyExchange> exchange;
  metrics::WorkerCounters counters;

  AsyncSetup(const std::string& mode, std::uint32_t slots, std::uint32_t timeout_ms,
             std::vector<config::ExtensionEntry> after = {}) {
    dir.Add("asyncprobe");
    config.extensions.directory = dir.path();
    config.extensions.pending_slots = slots;
    config.extensions.pending_timeout_ms = timeout_ms;
    config.extensions.overflow_verdict.kind = config::VerdictKind::kRepeat;
    config.extensions.timeout_verdict.kind = config::VerdictKind::kStop;
    config.extensions.chain.push_back({"asyncprobe", "", mode, 0, true});
    for (const auto& entry : after) {
      dir.Add(entry.name);
      config.extensions.chain.push_back(entry);
    }
    host = std::make_shared<ExtensionHost>(config.extensions, HostOptions{1, 0});
    std::vector<std::string> errors;
    plan = host->Prepare(config.extensions, errors);
    EXPECT_TRUE(errors.empty());
    exchange = std::make_unique<service::PolicyExchange>(Policy(1), 1);
  }
  // A policy of `generation` whose chain is made from `plan`.
  std::shared_ptr<const service::Policy> Policy(std::uint64_t generation) {
    ExtensionHost* h = host.get();
    auto p = plan;
    return service::BuildPolicy(
        config, 1, generation,
        [h, p](const config::Config&, std::size_t w) { return h->MakeChain(p, w); }, host);
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

// Two blocking jobs from one receive batch run side by side on an arena of
// concurrency 2 (one drainer per published job). With one drainer per batch
// they ran one after the other: the first waited out its 10 s for its
// partner and dropped.
TEST(AsyncWorkerThread, blocking_jobs_of_one_batch_run_concurrently) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories";
  AsyncSetup s("pair", 64, 60'000);
  ASSERT_EQ(s.config.extensions.arena_concurrency, 2u);
  // A worker stages its jobs from the end of its first batch on: that batch
  // is two datagrams without packets, the second holds both packets.
  std::vector<std::vector<std::uint8_t>> script(2);
  for (auto& datagram : Datagrams(1, 2)) script.push_back(std::move(datagram));
  queueio::MemoryQueue queue(std::move(script), 2, false);
  service::Worker worker(Options(), queue, queue, *s.exchange, s.counters);
  ASSERT_EQ(worker.RunOnce(false), queueio::ReceiveStatus::kOk);
  ASSERT_EQ(worker.deferred(), 0u);
  ASSERT_EQ(worker.RunOnce(false), queueio::ReceiveStatus::kOk);  // both packets, one batch
  EXPECT_EQ(worker.deferred(), 2u);
  // Serial jobs take 10 s; this waits for the verdicts, at most 30 s.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (worker.deferred() > 0 && std::chrono::steady_clock::now() < give_up) {
    if (worker.RunOnce(false) == queueio::ReceiveStatus::kWouldBlock) std::this_thread::yield();
  }
  worker.Flush();
  const KernelModel kernel = Check(queue, 2);
  for (const auto& [id, code] : kernel.verdicts()) {
    EXPECT_EQ(code, static_cast<std::uint32_t>(NF_ACCEPT)) << "packet " << id << "'s job ran alone";
  }
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

// An extension that completes a packet and then returns a verdict for it
// as well: process()'s verdict stands, the completion is dropped, and its
// pending slot goes back to the table once (a slot handed out twice would
// lose or mix up the verdicts of the packets that shared it).
TEST(AsyncWorkerThread, a_completion_followed_by_a_verdict_from_process_is_dropped) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories";
  constexpr std::size_t kPackets = 600;
  AsyncSetup s("liar", 64, 60'000);  // each slot is reused several times
  queueio::MemoryQueue queue(Datagrams(1, kPackets), 64, false);
  service::Worker worker(Options(), queue, queue, *s.exchange, s.counters);
  for (int i = 0; i < 100000; ++i) {
    if (worker.RunOnce(false) == queueio::ReceiveStatus::kWouldBlock && worker.deferred() == 0) break;
  }
  const KernelModel kernel = Check(queue, kPackets);
  for (const auto& [id, code] : kernel.verdicts()) {
    EXPECT_EQ(code, static_cast<std::uint32_t>(id % 2 == 0 ? NF_DROP : NF_ACCEPT)) << id;
  }
  EXPECT_EQ(s.host->pending(0), 0u);
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

TEST(AsyncWorkerThread, next_from_a_completion_continues_the_chain_after_the_extension) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories";
  // Fewer packets than pending slots and deferrable ids: no overflow verdict.
  constexpr std::size_t kPackets = 200;
  // asyncprobe completes NEXT with mark 4; probe_b (group 4: it sees only
  // packets with that mark) drops; the end verdict (accept) is never reached.
  AsyncSetup s("next", 256, 60'000, {{"probe_b", "", "drop", 4, true}});
  queueio::MemoryQueue queue(Datagrams(1, kPackets), 64, false);
  service::Worker worker(Options(), queue, queue, *s.exchange, s.counters);
  for (int i = 0; i < 2'000'000; ++i) {
    const auto status = worker.RunOnce(false);
    if (status == queueio::ReceiveStatus::kWouldBlock && worker.deferred() == 0) break;
    if (status == queueio::ReceiveStatus::kWouldBlock) std::this_thread::yield();
  }
  worker.Flush();
  const KernelModel kernel = Check(queue, kPackets);
  for (const auto& [id, code] : kernel.verdicts()) {
    EXPECT_EQ(code, static_cast<std::uint32_t>(NF_DROP)) << id;
  }
  EXPECT_EQ(s.host->Info("probe_b").text, "calls " + std::to_string(kPackets));
  EXPECT_EQ(worker.deferred(), 0u);
}

TEST(AsyncWorkerThread, a_chain_freed_by_a_reload_still_resumes_its_pending_packets) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories";
  constexpr std::size_t kPackets = 40;
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  {
    // asyncprobe holds every packet until the test writes to `gate`, then
    // answers NEXT: probe_b (drop) decides, in the chain the packet pended in.
    AsyncSetup s("gate=" + std::to_string(gate[0]), 256, 600'000,
                 {{"probe_b", "", "drop", 0, true}});
    queueio::MemoryQueue queue(Datagrams(1, kPackets), kPackets / 2, false);
    service::Worker worker(Options(), queue, queue, *s.exchange, s.counters);
    worker.RunOnce(false);  // packets 1..20 pend in the first chain
    EXPECT_EQ(worker.deferred(), kPackets / 2);
    // A reload: the same extensions in a new chain.
    std::vector<std::string> errors;
    s.plan = s.host->Prepare(s.config.extensions, errors);
    EXPECT_TRUE(errors.empty());
    s.exchange->Publish(s.Policy(2));
    worker.RunOnce(false);  // 21..40 under the new chain; the worker reports it
    EXPECT_EQ(worker.deferred(), kPackets);
    s.exchange->Reclaim();  // frees the first policy and its chain decider
    EXPECT_EQ(s.host->retired_chains(), 1u) << "the first chain's links must wait for its packets";
    const std::string bytes(kPackets, 'x');
    EXPECT_EQ(::write(gate[1], bytes.data(), bytes.size()), static_cast<ssize_t>(kPackets));
    for (int i = 0; i < 10'000'000 && worker.deferred() > 0; ++i) {
      if (worker.RunOnce(false) == queueio::ReceiveStatus::kWouldBlock) std::this_thread::yield();
    }
    worker.Flush();
    const KernelModel kernel = Check(queue, kPackets);
    for (const auto& [id, code] : kernel.verdicts()) {
      EXPECT_EQ(code, static_cast<std::uint32_t>(NF_DROP)) << id;
    }
    EXPECT_EQ(s.host->Info("probe_b").text, "calls " + std::to_string(kPackets));
    EXPECT_EQ(s.host->retired_chains(), 0u) << "answered: the first chain is freed";
  }
  ::close(gate[0]);
  ::close(gate[1]);
}

TEST(AsyncWorkerThread, completions_wake_a_blocked_worker_without_traffic_or_a_timeout) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: extensions load only from root-owned directories";
  constexpr std::size_t kPackets = 40;
  // Each job waits for one byte on `gate`: the work ends when the test says.
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  // Stands for the queue socket: it never becomes readable (no traffic).
  int idle[2];
  ASSERT_EQ(::pipe(idle), 0);
  {
    AsyncSetup s("gate=" + std::to_string(gate[0]), 256, 600'000);
    queueio::MemoryQueue queue(Datagrams(1, kPackets), 64, false);
    service::WorkerOptions options = Options();
    options.receive_batch = 64;
    options.wait_fd = idle[0];
    // A wait that ran out of time instead of being woken would take this long
    // and be counted (wait_stats().timeouts).
    options.stop_check_ms = 30'000;
    service::Worker worker(options, queue, queue, *s.exchange, s.counters);
    int iterations = 0;
    std::thread loop([&] {
      worker.RunOnce(false);  // receives every packet; each pends
      while (worker.deferred() > 0 && ++iterations < 10'000) worker.RunOnce(true);
    });
    // Once the worker went to sleep with its packets pending, finish the work.
    for (int i = 0; i < 10'000'000 && s.host->wait_stats(0).waits == 0; ++i) std::this_thread::yield();
    const std::string bytes(kPackets, 'x');
    EXPECT_EQ(::write(gate[1], bytes.data(), bytes.size()), static_cast<ssize_t>(kPackets));
    loop.join();
    const ExtensionHost::WaitStats stats = s.host->wait_stats(0);
    EXPECT_GE(stats.waits, 1u);
    EXPECT_GE(stats.wakeups, 1u) << "no completion woke the sleeping worker";
    EXPECT_EQ(stats.timeouts, 0u) << "a wait ended by its timeout, not by a completion";
    EXPECT_LT(iterations, 10'000);
    EXPECT_EQ(worker.deferred(), 0u);
    const KernelModel kernel = Check(queue, kPackets);
    for (const auto& [id, code] : kernel.verdicts()) {
      EXPECT_EQ(code, static_cast<std::uint32_t>(NF_ACCEPT)) << id;
    }
  }
  for (int fd : {gate[0], gate[1], idle[0], idle[1]}) ::close(fd);
}

}  // namespace
}  // namespace verdictd::extensions
