#include "verdictd/service/watchdog.h"

#include <gtest/gtest.h>

#include <vector>

namespace verdictd::service {
namespace {

constexpr std::uint64_t kMs = 1'000'000;

TEST(WorkerWatchdog, a_worker_is_stalled_only_when_work_waits_past_the_bound) {
  metrics::WorkerCounters counters;
  WorkerWatchdog watchdog(200 * kMs);
  WorkerProgress p{3, 10, true, &counters};
  EXPECT_TRUE(watchdog.Check({&p, 1}, 0));
  EXPECT_TRUE(watchdog.Check({&p, 1}, 199 * kMs));  // not yet past the bound
  EXPECT_FALSE(watchdog.Check({&p, 1}, 200 * kMs));
  EXPECT_EQ(watchdog.stalled(), (std::vector<std::uint16_t>{3}));
  EXPECT_TRUE(counters.stalled.load());
  EXPECT_EQ(counters.stalls.value(), 1u);
  EXPECT_FALSE(watchdog.Check({&p, 1}, 900 * kMs));
  EXPECT_EQ(counters.stalls.value(), 1u);  // counted once per stall
  p.heartbeat = 11;  // back in its loop
  EXPECT_TRUE(watchdog.Check({&p, 1}, 901 * kMs));
  EXPECT_FALSE(counters.stalled.load());
  EXPECT_TRUE(watchdog.stalled().empty());
  // A second stall counts again.
  EXPECT_FALSE(watchdog.Check({&p, 1}, 1200 * kMs));
  EXPECT_EQ(counters.stalls.value(), 2u);
}

TEST(WorkerWatchdog, an_idle_worker_is_never_stalled) {
  WorkerWatchdog watchdog(200 * kMs);
  WorkerProgress idle{0, 5, false, nullptr};
  for (std::uint64_t t = 0; t < 10'000 * kMs; t += 100 * kMs) {
    EXPECT_TRUE(watchdog.Check({&idle, 1}, t));
  }
  // Work arrives: the bound starts from then, not from the last heartbeat.
  idle.work_waiting = true;
  EXPECT_TRUE(watchdog.Check({&idle, 1}, 10'000 * kMs));
  EXPECT_TRUE(watchdog.Check({&idle, 1}, 10'100 * kMs));
  EXPECT_FALSE(watchdog.Check({&idle, 1}, 10'300 * kMs));
}

TEST(WorkerWatchdog, one_stalled_worker_of_several_fails_the_check_and_removed_ones_are_forgotten) {
  WorkerWatchdog watchdog(100 * kMs);
  std::vector<WorkerProgress> workers{{0, 1, true, nullptr}, {1, 1, true, nullptr}};
  EXPECT_TRUE(watchdog.Check(workers, 0));
  workers[0].heartbeat = 2;
  EXPECT_FALSE(watchdog.Check(workers, 150 * kMs));
  EXPECT_EQ(watchdog.stalled(), (std::vector<std::uint16_t>{1}));
  workers.pop_back();  // queue 1 removed by a reload
  EXPECT_TRUE(watchdog.Check(workers, 160 * kMs));
  EXPECT_TRUE(watchdog.stalled().empty());
}

TEST(QueueSummary, names_queue_ranges_workers_generation_verdicts_and_stalls) {
  const std::vector<std::uint16_t> queues{1, 0, 4, 5, 6, 9};
  EXPECT_EQ(QueueSummary(queues, 3, 1234, {}),
            "queues 0-1,4-6,9 bound, 6 workers, generation 3, 1234 verdicts");
  const std::vector<std::uint16_t> one{7};
  const std::vector<std::uint16_t> stalled{7};
  EXPECT_EQ(QueueSummary(one, 1, 0, stalled),
            "queue 7 bound, 1 worker, generation 1, 0 verdicts, queue 7 stalled");
  EXPECT_EQ(QueueSummary({}, 1, 0, {}), "no queue bound, 0 workers, generation 1, 0 verdicts");
}

}  // namespace
}  // namespace verdictd::service
