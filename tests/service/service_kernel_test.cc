// The Service on the real kernel, with its threads: queues added and removed
// live (the path a reload takes) while another queue carries traffic and a
// scraper thread reads the counters. Named "*Thread*" so CI also runs it
// under TSan. Each test runs in its own process and network namespace.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>

#include "../queueio/netns.h"
#include "verdictd/queueio/kernel_queue_stats.h"
#include "verdictd/metrics/service_counters.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/reload.h"
#include "verdictd/service/service.h"

namespace verdictd::service {
namespace {

using queueio::testing::DrainUdp;

constexpr std::uint16_t kSteadyQueue = 41;
constexpr std::uint16_t kAddedQueue = 42;
constexpr std::uint16_t kSteadyPort = 7001;
constexpr std::uint16_t kAddedPort = 7002;

config::Config WithQueues(bool added, std::uint32_t steady_copy_range = 0xffff) {
  config::Config config;
  config.queues.clear();
  config::QueueRange steady;
  steady.first = kSteadyQueue;
  steady.count = 1;
  steady.copy_range = steady_copy_range;
  steady.receive_buffer_bytes = 1 << 20;
  config.queues.push_back(steady);
  if (added) {
    config::QueueRange extra = steady;
    extra.first = kAddedQueue;
    extra.copy_range = 0xffff;
    config.queues.push_back(extra);
  }
  return config;
}

// Datagrams that arrived on `fd`, waiting until `expected` did or 5 s passed.
int ReceiveUpTo(int fd, int expected) {
  int received = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (received < expected && std::chrono::steady_clock::now() < deadline) {
    received += DrainUdp(fd, 200);
  }
  return received;
}

bool KernelHasQueue(std::uint16_t queue) {
  const auto table = queueio::ReadKernelQueueTable();
  if (!table) return false;
  for (const queueio::KernelQueueStats& line : *table) {
    if (line.queue_num == queue) return true;
  }
  return false;
}

std::uint64_t PacketsOf(const Service& service, std::uint16_t queue) {
  std::uint64_t packets = 0;
  service.VisitCounters([&](std::span<const QueueCountersRef> queues) {
    for (const QueueCountersRef& ref : queues) {
      if (ref.queue == queue) packets = ref.counters->packets.value();
    }
  });
  return packets;
}

class ServiceThreads : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = queueio::testing::KernelTestsUnavailable(); !why.empty()) {
      GTEST_SKIP() << why;
    }
    const std::string netns = queueio::testing::EnterFreshNetns();
    ASSERT_TRUE(netns.empty()) << netns;
    for (const auto& [port, queue] : {std::pair{kSteadyPort, kSteadyQueue},
                                      std::pair{kAddedPort, kAddedQueue}}) {
      ASSERT_EQ(queueio::testing::Run("iptables -A OUTPUT -o lo -p udp --dport " +
                                      std::to_string(port) + " -j NFQUEUE --queue-num " +
                                      std::to_string(queue)),
                0);
    }
    spdlog::set_level(spdlog::level::warn);
  }

  // Starts the Service on the steady queue alone (or on `initial`'s
  // queues), with room in the policy exchange for `slots` workers.
  Service& StartSteadyQueue(std::size_t slots, const config::Config& initial = WithQueues(false)) {
    const std::vector<int> cpus = AllowedCpus();
    service_ = std::make_unique<Service>(PlanQueues(initial, cpus), initial.verdict, cpus);
    service_->Open();
    exchange_ = std::make_unique<PolicyExchange>(BuildPolicy(initial, 1, 1), 1, slots);
    service_->Start(*exchange_, [] {});
    return *service_;
  }

  // A reload's view: the embedded defaults with `queues_` as [[queues]]
  // (what the "file" says; change it, then reload).
  ConfigSource Source() {
    ConfigSource source;
    source.apply_flags = [this](config::Config& c) { c.queues = queues_; };
    return source;
  }
  config::Config Load(const ConfigSource& source) {
    config::LoadResult loaded = LoadEffectiveConfig(source);
    EXPECT_TRUE(loaded.ok()) << config::FormatDiagnostics(loaded.diagnostics);
    return loaded.config;
  }

  std::vector<config::QueueRange> queues_ = WithQueues(false).queues;
  // Declared first: the service's workers use it until they stop.
  std::unique_ptr<PolicyExchange> exchange_;
  std::unique_ptr<Service> service_;
};

TEST_F(ServiceThreads, adds_and_removes_queues_live_while_another_carries_traffic) {
  Service& service = StartSteadyQueue(8);
  PolicyExchange& exchange = *exchange_;
  const int steady_rx = queueio::testing::UdpReceiver(kSteadyPort);
  const int added_rx = queueio::testing::UdpReceiver(kAddedPort);
  ASSERT_GE(steady_rx, 0);
  ASSERT_GE(added_rx, 0);

  // A scrape running all along, as the metrics server does.
  std::atomic<bool> stop_scraping{false};
  std::uint64_t scrapes = 0;
  std::thread scraper([&] {
    while (!stop_scraping.load()) {
      service.VisitCounters([&](std::span<const QueueCountersRef> queues) {
        for (const QueueCountersRef& ref : queues) scrapes += ref.counters->packets.value() > 0;
      });
      exchange.Reclaim();
    }
  });

  std::uint64_t generation = 1;
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    queueio::testing::SendUdp(kSteadyPort, 200, 64);

    const config::Config grown = WithQueues(true);
    EXPECT_EQ(service.Prepare(grown), "adds queue 42");
    exchange.Publish(BuildPolicy(grown, service.slot_count(), ++generation));
    EXPECT_EQ(service.Commit(), "");
    EXPECT_EQ(service.size(), 2u);
    EXPECT_TRUE(KernelHasQueue(kAddedQueue));
    queueio::testing::SendUdp(kAddedPort, 100, 64);
    EXPECT_EQ(ReceiveUpTo(added_rx, 100), 100) << "round " << round;
    EXPECT_EQ(PacketsOf(service, kAddedQueue), 100u) << "round " << round;

    const config::Config shrunk = WithQueues(false);
    EXPECT_EQ(service.Prepare(shrunk), "removes queue 42");
    exchange.Publish(BuildPolicy(shrunk, service.slot_count(), ++generation));
    EXPECT_EQ(service.Commit(), "");
    EXPECT_FALSE(KernelHasQueue(kAddedQueue));
    EXPECT_EQ(ReceiveUpTo(steady_rx, 200), 200) << "round " << round;
  }
  // The removed queue's slot was freed each time (and taken again next round).
  EXPECT_EQ(service.slot_count(), 1u);

  // A running queue's settings cannot change live; nothing changes.
  try {
    service.Prepare(WithQueues(false, 128));
    ADD_FAILURE() << "a copy_range change of a running queue was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("queue 41: copy_range 65535 -> 128"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(service.Commit(), "");  // nothing pending
  ASSERT_EQ(service.plan().size(), 1u);
  EXPECT_EQ(service.plan()[0].queue.queue_num, kSteadyQueue);
  EXPECT_TRUE(KernelHasQueue(kSteadyQueue));
  EXPECT_EQ(PacketsOf(service, kSteadyQueue), 200u * kRounds);

  stop_scraping = true;
  scraper.join();
  EXPECT_GT(scrapes, 0u);
  service.Stop();
  EXPECT_FALSE(KernelHasQueue(kSteadyQueue));
  EXPECT_FALSE(service.failed()) << service.failure();
  close(steady_rx);
  close(added_rx);
}

TEST_F(ServiceThreads, a_failed_bind_leaves_the_running_queues_as_they_were) {
  Service& service = StartSteadyQueue(8);
  // Another socket holds queue 42.
  queueio::QueueOptions held;
  held.queue_num = kAddedQueue;
  auto holder = queueio::QueueSocket::Open(held);

  EXPECT_THROW(service.Prepare(WithQueues(true)), queueio::QueueError);
  EXPECT_EQ(service.size(), 1u);
  EXPECT_EQ(service.slot_count(), 1u) << "the slot of the failed queue was not released";
  holder.reset();
  // With the queue free again the same change goes through.
  EXPECT_EQ(service.Prepare(WithQueues(true)), "adds queue 42");
  service.Abort();  // e.g. the policy build failed
  EXPECT_FALSE(KernelHasQueue(kAddedQueue));
  EXPECT_EQ(service.size(), 1u);
  service.Stop();
}

TEST_F(ServiceThreads, refuses_more_queues_than_the_exchange_has_worker_slots) {
  Service& service = StartSteadyQueue(1);  // no room to grow
  try {
    service.Prepare(WithQueues(true));
    ADD_FAILURE() << "a queue beyond the exchange's slots was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("at most 1 worker slots"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(KernelHasQueue(kAddedQueue));
  EXPECT_EQ(service.size(), 1u);
  service.Stop();
}

// A stop (SIGTERM) that lands between a reload's Prepare() (queue 42 bound,
// no worker yet) and its Commit(): the stop wins. Every packet the steady
// queue had gets its verdict, the prepared queue is unbound, nothing starts
// afterwards, and the reload says it was not applied.
TEST_F(ServiceThreads, a_stop_between_a_reloads_prepare_and_commit_wins) {
  const ConfigSource source = Source();
  const config::Config initial = Load(source);
  Service& service = StartSteadyQueue(8, initial);
  const int steady_rx = queueio::testing::UdpReceiver(kSteadyPort);
  ASSERT_GE(steady_rx, 0);
  queueio::testing::SendUdp(kSteadyPort, 200, 64);

  metrics::ServiceCounters counters;
  bool stopped_in_between = false;
  Reloader reloader(
      source, initial, *exchange_,
      [&](const config::Config& next, std::uint64_t generation) {
        // Prepare() has bound the added queue: the stop arrives now.
        EXPECT_TRUE(KernelHasQueue(kAddedQueue));
        service.Stop();
        stopped_in_between = true;
        return BuildPolicy(next, service.slot_count(), generation);
      },
      counters, {}, &service);
  queues_ = WithQueues(true).queues;
  const ReloadResult result = reloader.Reload("test");
  ASSERT_TRUE(stopped_in_between);
  EXPECT_FALSE(result.applied) << result.message;
  EXPECT_NE(result.message.find("verdictd is stopping; the queue change was not applied "
                                "(queue 42 unbound again)"),
            std::string::npos)
      << result.message;
  EXPECT_EQ(counters.reload_failures.value(), 1u);
  EXPECT_EQ(counters.reloads.value(), 0u);

  EXPECT_FALSE(KernelHasQueue(kAddedQueue)) << "the prepared queue was left bound";
  EXPECT_FALSE(KernelHasQueue(kSteadyQueue));
  EXPECT_EQ(service.size(), 1u) << "the prepared queue was started after the stop";
  EXPECT_EQ(ReceiveUpTo(steady_rx, 200), 200);
  EXPECT_EQ(PacketsOf(service, kSteadyQueue), 200u);
  EXPECT_FALSE(service.failed()) << service.failure();

  // Stopped for good: a later reload changes no queue.
  const ReloadResult later = reloader.Reload("test");
  EXPECT_FALSE(later.applied);
  EXPECT_NE(later.message.find("verdictd is not running"), std::string::npos) << later.message;
  EXPECT_FALSE(KernelHasQueue(kAddedQueue));
  close(steady_rx);
}

// An added queue whose worker cannot start (as when no thread can be
// created) during a reload's Commit(): the reload is reported failed naming
// the queue, the queue is unbound again, the steady queue serves on
// untouched, and the next reload adds the queue.
TEST_F(ServiceThreads, a_worker_that_fails_to_start_fails_the_reload_and_the_others_serve_on) {
  const ConfigSource source = Source();
  const config::Config initial = Load(source);
  Service& service = StartSteadyQueue(8, initial);
  const int steady_rx = queueio::testing::UdpReceiver(kSteadyPort);
  const int added_rx = queueio::testing::UdpReceiver(kAddedPort);
  ASSERT_GE(steady_rx, 0);
  ASSERT_GE(added_rx, 0);
  metrics::ServiceCounters counters;
  Reloader reloader(
      source, initial, *exchange_,
      [&service](const config::Config& next, std::uint64_t generation) {
        return BuildPolicy(next, service.slot_count(), generation);
      },
      counters, {}, &service);

  service.set_start_hook_for_test([](std::uint16_t queue) {
    if (queue == kAddedQueue) throw std::runtime_error("Resource temporarily unavailable");
  });
  queues_ = WithQueues(true).queues;
  ReloadResult result = reloader.Reload("test");
  EXPECT_FALSE(result.applied) << result.message;
  EXPECT_NE(result.message.find("queue 42: cannot start its worker (Resource temporarily "
                                "unavailable); it was unbound, reload to retry"),
            std::string::npos)
      << result.message;
  EXPECT_EQ(result.generation, 2u);  // the policy went out and stays
  EXPECT_EQ(counters.reload_failures.value(), 1u);
  EXPECT_EQ(counters.reloads.value(), 0u);
  EXPECT_NE(reloader.last_result().find("failed: queue 42"), std::string::npos)
      << reloader.last_result();
  EXPECT_FALSE(KernelHasQueue(kAddedQueue)) << "the half-started queue was left bound";
  EXPECT_TRUE(KernelHasQueue(kSteadyQueue));
  EXPECT_EQ(service.size(), 1u);
  EXPECT_EQ(service.slot_count(), 1u) << "the failed queue's slot was not freed";

  // The steady queue serves on: exact counts through it.
  queueio::testing::SendUdp(kSteadyPort, 200, 64);
  EXPECT_EQ(ReceiveUpTo(steady_rx, 200), 200);
  EXPECT_EQ(PacketsOf(service, kSteadyQueue), 200u);

  // The next reload adds the queue that did not start.
  service.set_start_hook_for_test({});
  result = reloader.Reload("test");
  ASSERT_TRUE(result.applied) << result.message;
  EXPECT_NE(result.message.find("adds queue 42"), std::string::npos) << result.message;
  EXPECT_TRUE(KernelHasQueue(kAddedQueue));
  queueio::testing::SendUdp(kAddedPort, 100, 64);
  EXPECT_EQ(ReceiveUpTo(added_rx, 100), 100);
  EXPECT_EQ(PacketsOf(service, kAddedQueue), 100u);
  EXPECT_EQ(PacketsOf(service, kSteadyQueue), 200u);

  service.Stop();
  EXPECT_FALSE(KernelHasQueue(kSteadyQueue));
  EXPECT_FALSE(KernelHasQueue(kAddedQueue));
  EXPECT_FALSE(service.failed()) << service.failure();
  close(steady_rx);
  close(added_rx);
}

}  // namespace
}  // namespace verdictd::service
