// The extension host's cost per packet, through the real Worker loop over an
// in-memory queue (parse, decide, batch, flush; no kernel):
//
//  BM_Extensions_Chain/N: a chain of N no-op extensions (each returns NEXT;
//    the end verdict accepts). N = 0 is the no-chain path (the default
//    decider). Per extension: (ns/packet at N - ns/packet at 0) / N, from
//    one run. Goal: <= 5 ns.
//  BM_Extensions_ChainDecide/N: the chain decider alone (no parse, no batch).
//  BM_Extensions_Async/0|1: one extension that accepts, inline (0) or
//    through PENDING, the oneTBB arena and the completion queue (1, trivial
//    work: the arena completes at once), with back-pressure (the worker
//    receives only while it has room for a batch in its pending table).
//    Goal: throughput of 1 >= 0.5x of 0, in real time, with the arena on
//    another CPU (run this one without taskset -c: on one CPU the arena
//    thread only gets the worker's time slices).
//
// The extensions are the test fixtures (tests/extensions/fixtures), copied
// into a root-owned temporary directory: the benchmarks need root.
#include <benchmark/benchmark.h>
#include <linux/netfilter.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "verdictd/extensions/host.h"
#include "verdictd/queueio/memory_queue.h"
#include "verdictd/queueio/parser.h"
#include "verdictd/service/build_policy.h"
#include "verdictd/service/worker.h"
#include "verdictd/test_fixtures/netlink_messages.h"

namespace {

using namespace verdictd;

class ExtensionDir {
 public:
  ExtensionDir() {
    char name[] = "/tmp/verdictd-bench-ext-XXXXXX";
    path_ = ::mkdtemp(name);
    std::filesystem::permissions(path_, std::filesystem::perms(0755));
    for (const char* file : {"noop_a", "noop_b", "noop_c", "asyncprobe"}) {
      const std::string to = path_ + "/" + file + ".so";
      std::filesystem::copy_file(std::string(EXT_FIXTURE_DIR) + "/" + file + ".so", to);
      std::filesystem::permissions(to, std::filesystem::perms(0644));
    }
  }
  ~ExtensionDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::vector<std::uint8_t>> Datagrams() {
  test_fixtures::SyntheticPacket packet;
  packet.hook = NF_INET_FORWARD;
  packet.payload = test_fixtures::FillerPayload(64);
  return test_fixtures::BuildPacketDatagrams(1, 1024, packet);
}

struct Setup {
  ExtensionDir dir;
  config::Config config;
  std::shared_ptr<extensions::ExtensionHost> host;
  std::shared_ptr<const extensions::ChainPlan> plan;

  explicit Setup(std::vector<config::ExtensionEntry> chain) {
    config.extensions.directory = dir.path();
    config.extensions.chain = std::move(chain);
    config.extensions.arena_concurrency = 1;
    host = std::make_shared<extensions::ExtensionHost>(config.extensions,
                                                       extensions::HostOptions{1, 0});
    std::vector<std::string> errors;
    plan = host->Prepare(config.extensions, errors);
    if (!errors.empty()) throw std::runtime_error(errors.front());
  }
  std::shared_ptr<const service::Policy> Policy() {
    extensions::ExtensionHost* h = host.get();
    auto p = plan;
    return service::BuildPolicy(
        config, 1, 1,
        [h, p](const config::Config&, std::size_t worker) { return h->MakeChain(p, worker); },
        host);
  }
};

std::vector<config::ExtensionEntry> Noops(int n) {
  std::vector<config::ExtensionEntry> chain;
  const char* names[] = {"noop_a", "noop_b", "noop_c"};
  for (int i = 0; i < n; ++i) chain.push_back({names[i], "", "", 0, true});
  return chain;
}

// The kernel's queue as the worker sees it under back-pressure: while the
// worker holds `limit` packets waiting for asynchronous verdicts, the next
// receive finds nothing (the packets wait in the kernel), so the figure is
// what the async path sustains, not how fast overflow verdicts go out.
class GatedSource final : public queueio::PacketSource {
 public:
  GatedSource(queueio::MemoryQueue& queue, std::size_t limit) : queue_(queue), limit_(limit) {}
  void set_worker(const service::Worker* worker) { worker_ = worker; }
  queueio::ReceiveStatus Receive(queueio::ReceiveBatch& batch, bool block, int timeout) noexcept override {
    if (worker_ != nullptr && worker_->deferred() + 64 > limit_) {
      // The worker would sleep in its receive here (1 ms timeout while
      // verdicts are pending); yielding lets an arena thread on the same CPU run.
      ++gated_;
      std::this_thread::yield();
      return queueio::ReceiveStatus::kWouldBlock;
    }
    return queue_.Receive(batch, block, timeout);
  }
  // Receives refused because the pending table was full: the worker
  // waited for the arena (the arena side is then the slower one).
  std::uint64_t gated() const { return gated_; }

 private:
  queueio::MemoryQueue& queue_;
  std::size_t limit_;
  const service::Worker* worker_ = nullptr;
  std::uint64_t gated_ = 0;
};

void RunWorker(benchmark::State& state, const std::shared_ptr<const service::Policy>& policy) {
  queueio::MemoryQueue queue(Datagrams(), 64, true);
  queue.set_record_sends(false);
  GatedSource source(queue, config::ExtensionsSection::kDefaultPendingSlots);
  service::PolicyExchange exchange(policy, 1);
  metrics::WorkerCounters counters;
  service::WorkerOptions options;
  options.receive_batch = 64;
  service::Worker worker(options, source, queue, exchange, counters);
  source.set_worker(&worker);
  std::uint64_t deferred_sum = 0, runs = 0;
  for (auto _ : state) {
    worker.RunOnce(false);
    deferred_sum += worker.deferred();
    ++runs;
  }
  state.counters["in_flight"] = static_cast<double>(deferred_sum) / static_cast<double>(std::max<std::uint64_t>(1, runs));
  // Packets still pending at the end are left to the host (the source loops
  // forever, so there is no drain); its destructor waits for the arena.
  worker.Flush();
  state.SetItemsProcessed(static_cast<std::int64_t>(counters.packets.value()));
  state.counters["gated_per_batch"] =
      static_cast<double>(source.gated()) * 64 /
      static_cast<double>(std::max<std::uint64_t>(1, counters.packets.value()));
  state.counters["verdicts"] = static_cast<double>(
      counters.verdicts[0].value() + counters.verdicts[1].value());
}

bool NeedRoot(benchmark::State& state) {
  if (::geteuid() == 0) return false;
  state.SkipWithError("needs root: extensions load only from root-owned directories");
  return true;
}

void BM_Extensions_Chain(benchmark::State& state) {
  if (NeedRoot(state)) return;
  const int n = static_cast<int>(state.range(0));
  Setup setup(Noops(n));
  RunWorker(state, setup.Policy());
}
BENCHMARK(BM_Extensions_Chain)->Arg(0)->Arg(1)->Arg(3);

void BM_Extensions_ChainDecide(benchmark::State& state) {
  if (NeedRoot(state)) return;
  const int n = static_cast<int>(state.range(0));
  Setup setup(Noops(n));
  auto policy = setup.Policy();
  decider::Decider& decider = *policy->deciders[0];
  const auto datagrams = Datagrams();
  std::vector<std::uint8_t> message(datagrams[0].begin(), datagrams[0].end());
  queueio::PacketView packet;
  queueio::ParsePacketMessage(message, packet);
  for (auto _ : state) {
    benchmark::DoNotOptimize(decider.Decide(packet, 0));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Extensions_ChainDecide)->Arg(0)->Arg(1)->Arg(3);

void BM_Extensions_Async(benchmark::State& state) {
  if (NeedRoot(state)) return;
  const bool async = state.range(0) != 0;
  Setup setup({async ? config::ExtensionEntry{"asyncprobe", "", "quick", 0, true}
                     : config::ExtensionEntry{"noop_a", "", "accept", 0, true}});
  RunWorker(state, setup.Policy());
  // Packets that did not go through the async path (pending table full)
  // would flatter the figure: report them.
  const auto& w = setup.plan->links[0]->counters().workers[0];
  const double calls = static_cast<double>(std::max<std::uint64_t>(1, w.calls.value()));
  state.counters["overflow_per_packet"] =
      static_cast<double>(w.overflows.value()) / (calls + static_cast<double>(w.overflows.value()));
  state.counters["pending_results"] = static_cast<double>(w.results[6].value());
}
BENCHMARK(BM_Extensions_Async)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
BENCHMARK_MAIN();
