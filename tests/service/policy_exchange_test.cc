#include "verdictd/service/policy_exchange.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace verdictd::service {
namespace {

std::shared_ptr<const Policy> MakePolicy(std::uint64_t generation) {
  auto policy = std::make_shared<Policy>();
  policy->generation = generation;
  policy->config.verdict.batch_size = generation;  // a payload tied to the generation
  return policy;
}

TEST(PolicyExchange, current_returns_the_latest_published_policy) {
  PolicyExchange exchange(MakePolicy(1), 2);
  EXPECT_EQ(exchange.Current(0).generation, 1u);
  exchange.Publish(MakePolicy(2));
  EXPECT_EQ(exchange.generation(), 2u);
  EXPECT_EQ(exchange.Current(0).generation, 2u);
  EXPECT_EQ(exchange.Current(1).generation, 2u);
}

TEST(PolicyExchange, keeps_a_retired_policy_until_every_worker_moved_on) {
  auto first = MakePolicy(1);
  std::weak_ptr<const Policy> watch = first;
  PolicyExchange exchange(std::move(first), 2);
  exchange.Current(0);
  exchange.Current(1);
  exchange.Publish(MakePolicy(2));
  exchange.Current(0);  // worker 0 moved; worker 1 may still read generation 1
  exchange.Reclaim();
  EXPECT_FALSE(watch.expired());
  exchange.Current(1);
  exchange.Reclaim();
  EXPECT_TRUE(watch.expired());
}

TEST(PolicyExchange, a_retired_worker_does_not_hold_policies_back) {
  auto first = MakePolicy(1);
  std::weak_ptr<const Policy> watch = first;
  PolicyExchange exchange(std::move(first), 2);
  exchange.Publish(MakePolicy(2));
  exchange.Current(0);
  exchange.Reclaim();
  EXPECT_FALSE(watch.expired());  // worker 1 never reported generation 2
  exchange.Retire(1);
  exchange.Reclaim();
  EXPECT_TRUE(watch.expired());
}

TEST(PolicyExchange, never_frees_the_current_policy) {
  PolicyExchange exchange(MakePolicy(1), 1);
  auto second = MakePolicy(2);
  std::weak_ptr<const Policy> watch = second;
  exchange.Publish(std::move(second));
  exchange.Retire(0);
  exchange.Reclaim();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(exchange.generation(), 2u);
}

// The control thread publishes generation g+1 only after the worker has
// reported g, so the worker provably reads every generation while the control
// thread reclaims concurrently (TSan checks the memory ordering). No timing
// assumption: each step waits for the other side's progress.
TEST(PolicyExchangeThreads, worker_sees_each_generation_whole_while_control_reclaims) {
  constexpr std::uint64_t kGenerations = 300;
  PolicyExchange exchange(MakePolicy(1), 1);
  std::atomic<std::uint64_t> seen{1};
  std::atomic<bool> torn{false};
  std::atomic<bool> backwards{false};
  std::thread worker([&] {
    std::uint64_t last = 0;
    while (last < kGenerations) {
      const Policy& policy = exchange.Current(0);
      if (policy.config.verdict.batch_size != policy.generation) torn = true;
      if (policy.generation < last) backwards = true;
      last = policy.generation;
      seen.store(last, std::memory_order_release);
      std::this_thread::yield();
    }
    exchange.Retire(0);
  });
  std::vector<std::weak_ptr<const Policy>> published;
  for (std::uint64_t g = 2; g <= kGenerations; ++g) {
    while (seen.load(std::memory_order_acquire) < g - 1) std::this_thread::yield();
    auto next = MakePolicy(g);
    published.push_back(next);
    exchange.Publish(std::move(next));
    exchange.Reclaim();
  }
  worker.join();
  exchange.Reclaim();
  EXPECT_FALSE(torn);
  EXPECT_FALSE(backwards);
  EXPECT_EQ(seen.load(), kGenerations);
  // Everything but the current policy was freed once the worker retired.
  for (std::size_t i = 0; i + 1 < published.size(); ++i) EXPECT_TRUE(published[i].expired()) << i;
  EXPECT_FALSE(published.back().expired());
}

}  // namespace
}  // namespace verdictd::service
