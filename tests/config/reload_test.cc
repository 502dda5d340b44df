#include "verdictd/service/reload.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "verdictd/config/values.h"
#include "verdictd/service/control.h"
#include "verdictd/service/startup_config.h"
#include "verdictd/service/decider.h"

namespace verdictd::service {
namespace {

queueio::Verdict ToVerdict(const config::VerdictSetting& setting) {
  queueio::Verdict verdict;
  verdict.kind = static_cast<queueio::VerdictKind>(setting.kind);
  verdict.target_queue = setting.target_queue;
  return verdict;
}

// Like the service's BuildPolicy: one fixed-verdict decider per worker.
std::shared_ptr<const Policy> Build(const config::Config& config, std::uint64_t generation,
                                    std::size_t workers) {
  auto policy = std::make_shared<Policy>();
  policy->generation = generation;
  policy->config = config;
  for (std::size_t i = 0; i < workers; ++i) {
    policy->deciders.push_back(
        std::make_unique<FixedVerdictDecider>(ToVerdict(config.verdict.default_verdict)));
  }
  return policy;
}

class ReloadTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kWorkers = 2;

  void SetUp() override {
    spdlog::set_level(spdlog::level::warn);  // reloads log at info; keep the output short
    path_ = std::filesystem::temp_directory_path() /
            ("verdictd-reload-test-" + std::to_string(::getpid()) + ".toml");
    Write("[verdict]\ndefault = \"accept\"\n");
    source_.file = path_.string();
    source_.online_cpus = 4;
    const config::LoadResult initial = LoadEffectiveConfig(source_);
    ASSERT_TRUE(initial.ok()) << config::FormatDiagnostics(initial.diagnostics);
    exchange_ = std::make_unique<PolicyExchange>(Build(initial.config, 1, kWorkers), kWorkers);
    reloader_ = std::make_unique<Reloader>(
        source_, initial.config, *exchange_,
        [](const config::Config& c, std::uint64_t g) { return Build(c, g, kWorkers); },
        counters_, [this](const config::Config& c) { applied_level_ = c.log.level; });
  }
  void TearDown() override { std::filesystem::remove(path_); }

  void Write(const std::string& text) {
    // Replace the file as editors do (new inode), like an operator would.
    const std::filesystem::path temp = path_.string() + ".new";
    std::ofstream(temp) << text;
    std::filesystem::rename(temp, path_);
  }

  std::filesystem::path path_;
  ConfigSource source_;
  metrics::ServiceCounters counters_;
  std::unique_ptr<PolicyExchange> exchange_;
  std::unique_ptr<Reloader> reloader_;
  config::LogLevel applied_level_ = config::LogLevel::kInfo;
};

TEST_F(ReloadTest, valid_live_change_is_published) {
  Write("[verdict]\ndefault = \"drop\"\n[log]\nlevel = \"debug\"\n");
  const ReloadResult result = reloader_->Reload("test");
  EXPECT_TRUE(result.applied) << result.message;
  EXPECT_EQ(result.generation, 2u);
  EXPECT_EQ(result.message, "generation 2 from " + path_.string() +
                                "; changed: verdict.default, log.level");
  EXPECT_EQ(exchange_->generation(), 2u);
  EXPECT_EQ(exchange_->Current(0).config.verdict.default_verdict.kind, config::VerdictKind::kDrop);
  EXPECT_EQ(reloader_->running().verdict.default_verdict.kind, config::VerdictKind::kDrop);
  EXPECT_EQ(applied_level_, config::LogLevel::kDebug);
  EXPECT_EQ(counters_.reloads.value(), 1u);
  EXPECT_EQ(counters_.reload_failures.value(), 0u);
}

TEST_F(ReloadTest, invalid_file_changes_nothing_and_is_counted) {
  Write("[verdict]\ndefault = \"dorp\"\nbatch_size = 0\n");
  const ReloadResult result = reloader_->Reload("test");
  EXPECT_FALSE(result.applied);
  EXPECT_EQ(result.message,
            "2 error(s) in " + path_.string() + "\n  " + path_.string() +
                ":2:11: verdict.default: expected one of \"accept\", \"drop\", \"repeat\", "
                "\"stop\", \"queue:N\", found string \"dorp\"; did you mean \"drop\"?\n  " +
                path_.string() +
                ":3:14: verdict.batch_size: expected an integer from 1 to 65536, found integer 0");
  EXPECT_EQ(exchange_->generation(), 1u);
  EXPECT_EQ(reloader_->running().verdict.default_verdict.kind, config::VerdictKind::kAccept);
  EXPECT_EQ(counters_.reloads.value(), 0u);
  EXPECT_EQ(counters_.reload_failures.value(), 1u);
}

TEST_F(ReloadTest, missing_file_changes_nothing) {
  std::filesystem::remove(path_);
  EXPECT_FALSE(reloader_->Reload("test").applied);
  EXPECT_EQ(exchange_->generation(), 1u);
  EXPECT_EQ(counters_.reload_failures.value(), 1u);
}

TEST_F(ReloadTest, restart_only_change_is_refused_naming_the_keys) {
  Write("[verdict]\ndefault = \"drop\"\n[metrics]\nlisten = \"127.0.0.1:1\"\n"
        "[[queues]]\nfirst = 5\ncount = 1\n");
  const ReloadResult result = reloader_->Reload("test");
  EXPECT_FALSE(result.applied);
  EXPECT_EQ(result.message,
            "these keys cannot change while verdictd runs, restart to apply them: "
            "queues[0].first, queues[0].count, metrics.listen");
  EXPECT_EQ(exchange_->generation(), 1u);
  EXPECT_EQ(exchange_->Current(0).config.verdict.default_verdict.kind,
            config::VerdictKind::kAccept);
  EXPECT_EQ(counters_.reload_failures.value(), 1u);
}

TEST_F(ReloadTest, flags_stay_in_force_across_reloads) {
  source_.overrides = {"verdict.unparseable=drop"};
  source_.apply_flags = [](config::Config& c) { c.log.level = config::LogLevel::kDebug; };
  const config::LoadResult initial = LoadEffectiveConfig(source_);
  ASSERT_TRUE(initial.ok());
  Reloader reloader(source_, initial.config, *exchange_,
                    [](const config::Config& c, std::uint64_t g) { return Build(c, g, 2); },
                    counters_);
  Write("[verdict]\ndefault = \"drop\"\nunparseable = \"accept\"\n[log]\nlevel = \"warn\"\n");
  ASSERT_TRUE(reloader.Reload("test").applied);
  EXPECT_EQ(reloader.running().verdict.unparseable_verdict.kind, config::VerdictKind::kDrop);
  EXPECT_EQ(reloader.running().log.level, config::LogLevel::kDebug);
  EXPECT_EQ(config::VerdictSettingText(reloader.running().verdict.default_verdict), "drop");
}

TEST_F(ReloadTest, batching_changes_apply_live_up_to_the_worker_capacity) {
  Write("[verdict]\nbatch_size = 8\nflush_interval_us = 10\nbusy_poll_us = 20\n"
        "latency_budget_us = 30\n");
  ReloadResult result = reloader_->Reload("test");
  ASSERT_TRUE(result.applied) << result.message;
  EXPECT_EQ(result.message, "generation 2 from " + path_.string() +
                                "; changed: verdict.batch_size, verdict.flush_interval_us, "
                                "verdict.busy_poll_us, verdict.latency_budget_us");
  const config::VerdictSection& live = exchange_->Current(0).config.verdict;
  EXPECT_EQ(live.batch_size, 8u);
  EXPECT_EQ(live.flush_interval_us, 10u);
  EXPECT_EQ(live.busy_poll_us, 20u);
  EXPECT_EQ(live.latency_budget_us, 30u);

  // Beyond what the workers' verdict tables were sized for: restart.
  Write("[verdict]\nbatch_size = 5000\n");
  result = reloader_->Reload("test");
  EXPECT_FALSE(result.applied);
  EXPECT_EQ(result.message,
            "these keys cannot change while verdictd runs, restart to apply them: "
            "verdict.batch_size");
  EXPECT_EQ(exchange_->generation(), 2u);
}

// Stands in for the Service: records the order of the calls the reload makes.
class RecordingQueueChanger final : public QueueChanger {
 public:
  explicit RecordingQueueChanger(PolicyExchange& exchange) : exchange_(exchange) {}
  std::string Prepare(const config::Config& next) override {
    calls.push_back("prepare@" + std::to_string(exchange_.generation()));
    if (!refuse.empty()) throw std::runtime_error(refuse);
    prepared_queues = next.queues.size();
    return "adds queue 9";
  }
  std::string Commit() override {
    calls.push_back("commit@" + std::to_string(exchange_.generation()));
    if (!commit_failure.empty()) throw std::runtime_error(commit_failure);
    return "";
  }
  void Abort() noexcept override { calls.push_back("abort"); }
  std::size_t slot_count() const override { return 3; }

  std::vector<std::string> calls;
  std::string refuse;
  std::string commit_failure;
  std::size_t prepared_queues = 0;

 private:
  PolicyExchange& exchange_;
};

TEST_F(ReloadTest, queue_changes_bind_before_the_policy_and_start_after_it) {
  RecordingQueueChanger queues(*exchange_);
  Reloader reloader(
      source_, reloader_->running(), *exchange_,
      [&queues](const config::Config& c, std::uint64_t g) {
        return Build(c, g, queues.slot_count());
      },
      counters_, {}, &queues);
  Write("[[queues]]\nfirst = 0\ncount = 1\n[[queues]]\nfirst = 9\ncount = 1\n");
  const ReloadResult result = reloader.Reload("test");
  ASSERT_TRUE(result.applied) << result.message;
  // Bound under generation 1, started once generation 2 was published.
  EXPECT_EQ(queues.calls, (std::vector<std::string>{"prepare@1", "commit@2"}));
  EXPECT_EQ(queues.prepared_queues, 2u);
  EXPECT_NE(result.message.find("; adds queue 9"), std::string::npos) << result.message;
  EXPECT_EQ(exchange_->Current(0).deciders.size(), 3u);
}

TEST_F(ReloadTest, failed_queue_commit_fails_the_reload_but_keeps_the_published_policy) {
  RecordingQueueChanger queues(*exchange_);
  Reloader reloader(
      source_, reloader_->running(), *exchange_,
      [&queues](const config::Config& c, std::uint64_t g) {
        return Build(c, g, queues.slot_count());
      },
      counters_, {}, &queues);
  queues.commit_failure =
      "queue 9: cannot start its worker (Resource temporarily unavailable); it was unbound, "
      "reload to retry";
  Write("[verdict]\ndefault = \"drop\"\n[[queues]]\nfirst = 0\ncount = 1\n[[queues]]\nfirst = 9\n"
        "count = 1\n");
  const ReloadResult result = reloader.Reload("test");
  EXPECT_FALSE(result.applied);
  EXPECT_EQ(queues.calls, (std::vector<std::string>{"prepare@1", "commit@2"}));
  EXPECT_EQ(result.message.rfind(queues.commit_failure + " (the rest of the reload applied: "
                                 "generation 2 from ", 0),
            0u)
      << result.message;
  // The policy was published before the commit and stays: it is what runs.
  EXPECT_EQ(result.generation, 2u);
  EXPECT_EQ(exchange_->generation(), 2u);
  EXPECT_EQ(config::VerdictSettingText(reloader.running().verdict.default_verdict), "drop");
  EXPECT_EQ(counters_.reload_failures.value(), 1u);
  EXPECT_EQ(counters_.reloads.value(), 0u);
  EXPECT_EQ(reloader.last_result().rfind("failed: queue 9: cannot start its worker", 0), 0u)
      << reloader.last_result();
}

TEST_F(ReloadTest, refused_queue_change_changes_nothing) {
  RecordingQueueChanger queues(*exchange_);
  Reloader reloader(
      source_, reloader_->running(), *exchange_,
      [](const config::Config& c, std::uint64_t g) { return Build(c, g, kWorkers); }, counters_,
      {}, &queues);
  queues.refuse = "a running queue cannot change its settings or CPU live (queue 0: cpu 0 -> 1)";
  Write("[verdict]\ndefault = \"drop\"\n[[queues]]\nfirst = 0\ncount = 1\ncpus = [1]\n");
  ReloadResult result = reloader.Reload("test");
  EXPECT_FALSE(result.applied);
  EXPECT_EQ(result.message, queues.refuse);
  EXPECT_EQ(queues.calls, std::vector<std::string>{"prepare@1"});
  EXPECT_EQ(exchange_->generation(), 1u);
  EXPECT_EQ(counters_.reload_failures.value(), 1u);
}

TEST_F(ReloadTest, failing_policy_build_unbinds_the_prepared_queues) {
  RecordingQueueChanger queues(*exchange_);
  Reloader reloader(
      source_, reloader_->running(), *exchange_,
      [](const config::Config&, std::uint64_t) -> std::shared_ptr<const Policy> {
        throw std::runtime_error("rules.conf:3: bad rule");
      },
      counters_, {}, &queues);
  Write("[[queues]]\nfirst = 0\ncount = 1\n[[queues]]\nfirst = 9\ncount = 1\n");
  const ReloadResult result = reloader.Reload("test");
  EXPECT_FALSE(result.applied);
  EXPECT_EQ(queues.calls, (std::vector<std::string>{"prepare@1", "abort"}));
  EXPECT_EQ(exchange_->generation(), 1u);
}

TEST_F(ReloadTest, failing_policy_build_changes_nothing) {
  Reloader reloader(
      source_, reloader_->running(), *exchange_,
      [](const config::Config&, std::uint64_t) -> std::shared_ptr<const Policy> {
        throw std::runtime_error("rules.conf:3: bad rule");
      },
      counters_);
  Write("[verdict]\ndefault = \"drop\"\n");
  const ReloadResult result = reloader.Reload("test");
  EXPECT_FALSE(result.applied);
  EXPECT_EQ(result.message, "rules.conf:3: bad rule");
  EXPECT_EQ(exchange_->generation(), 1u);
  EXPECT_EQ(counters_.reload_failures.value(), 1u);
}

TEST_F(ReloadTest, control_commands) {
  const ControlServer::Handler handler =
      MakeControlHandler(*reloader_, counters_, [] { return std::string("extra 1\n"); });
  EXPECT_EQ(handler("frob"),
            "error: unknown command \"frob\"; commands: reload, status, config, ext\n");
  EXPECT_TRUE(handler("config").starts_with("ok\n# verdictd effective configuration"));
  Write("[verdict]\ndefault = \"drop\"\n");
  EXPECT_EQ(handler("reload"), "ok reloaded: generation 2 from " + path_.string() +
                                   "; changed: verdict.default\n");
  Write("[verdict]\ndefault = 1\n");
  EXPECT_TRUE(handler("reload").starts_with("error: reload failed: 1 error(s) in "));
  const std::string status = handler("status");
  for (const char* line : {"ok\n", "\ngeneration 2\n", "\ndefault_verdict drop\n",
                           "\nreloads 1\n", "\nreload_failures 1\n", "\nextra 1\n",
                           "\nlast_reload failed: 1 error(s) in ", "toml |  /"}) {
    EXPECT_NE(status.find(line), std::string::npos) << line << " not in\n" << status;
  }
}

TEST(WorkerCountersStatus, sums_workers) {
  metrics::WorkerCounters workers[2];
  workers[0].packets.Add(5);
  workers[0].verdicts[0].Add(3);
  workers[0].verdicts[1].Add(2);
  workers[1].packets.Add(1);
  workers[1].verdicts[1].Add(1);
  const QueueCountersRef queues[] = {{4, &workers[0]}, {9, &workers[1]}};
  EXPECT_EQ(WorkerCountersStatus(queues),
            "workers 2\nqueues 4,9\npackets 6\nverdicts_accept 3\nverdicts_drop 3\n"
            "verdicts_repeat 0\nverdicts_queue 0\nverdicts_stop 0\n");
  EXPECT_EQ(WorkerCountersStatus({}).substr(0, 22), "workers 0\nqueues none\n");
}

TEST_F(ReloadTest, check_and_print_config_commands) {
  ConfigFlags flags;
  flags.check_file = path_.string();
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunConfigCommands(flags, source_), 0);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            path_.string() + ": configuration is valid\n");

  Write("[verdict]\nbatch_size = 0\n");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunConfigCommands(flags, source_), 1);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            path_.string() + ":2:14: verdict.batch_size: expected an integer from 1 to 65536, "
            "found integer 0\n" + path_.string() + ": 1 error(s)\n");

  ConfigFlags print;
  print.print = true;
  print.overrides = {"verdict.default=drop"};
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(RunConfigCommands(print, MakeConfigSource("", print, {})), 0);
  const std::string printed = ::testing::internal::GetCapturedStdout();
  config::LoadOptions options;
  options.online_cpus = 2;
  const config::LoadResult back = config::LoadConfigString(printed, "printed", options);
  ASSERT_TRUE(back.ok()) << printed;
  EXPECT_EQ(back.config.verdict.default_verdict.kind, config::VerdictKind::kDrop);

  EXPECT_EQ(RunConfigCommands(ConfigFlags{}, source_), -1);  // neither: run the daemon
  EXPECT_THROW(LoadStartupConfig(source_), std::runtime_error);

  // --check-config compiles the rules as well: a bad regex is found here.
  Write("[[rules]]\nname = \"bad-regex\"\naction = \"drop\"\ncontent = { regex = \"bot(\" }\n");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunConfigCommands(flags, source_), 1);
  const std::string compile_errors = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(compile_errors.find(path_.string() + ":4:"), std::string::npos) << compile_errors;
  EXPECT_NE(compile_errors.find("bad-regex"), std::string::npos) << compile_errors;
  EXPECT_NE(compile_errors.find("bad regex 'bot('"), std::string::npos) << compile_errors;
}

TEST(LoadEffectiveConfig, bad_flags_are_diagnostics) {
  ConfigSource source;
  source.online_cpus = 2;
  source.apply_flags = [](config::Config& c) { c.queues[0].cpus = {0, 9}; };
  EXPECT_EQ(config::FormatDiagnostics(LoadEffectiveConfig(source).diagnostics),
            "<command line>: queues[0].cpus[1]: expected an online CPU (0 to 1), found CPU 9; "
            "this machine has 2 online CPUs\n");
  source.apply_flags = [](config::Config&) { throw std::invalid_argument("--queues: bad"); };
  EXPECT_EQ(config::FormatDiagnostics(LoadEffectiveConfig(source).diagnostics),
            "<command line>: --queues: bad\n");
}

// Workers read the policy once per batch while reloads swap it: every batch
// sees one whole policy (its decider and its config agree), never a mix, and
// every worker ends on the last generation.
TEST_F(ReloadTest, workers_see_whole_policies_during_reloads) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> mismatches{0};
  std::atomic<std::uint64_t> batches{0};
  std::vector<std::thread> workers;
  for (std::size_t w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      queueio::PacketView packet{};
      while (!stop.load(std::memory_order_relaxed)) {
        const Policy& policy = exchange_->Current(w);
        const auto verdict = policy.deciders[w]->Decide(packet, 0);
        if (verdict.kind !=
            static_cast<queueio::VerdictKind>(policy.config.verdict.default_verdict.kind)) {
          mismatches.fetch_add(1, std::memory_order_relaxed);
        }
        batches.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  constexpr int kReloads = 40;
  for (int i = 0; i < kReloads; ++i) {
    Write(i % 2 == 0 ? "[verdict]\ndefault = \"drop\"\n" : "[verdict]\ndefault = \"accept\"\n");
    ASSERT_TRUE(reloader_->Reload("test").applied);
    exchange_->Reclaim();
  }
  // Let every worker pass at least one more batch on the last policy.
  const std::uint64_t seen = batches.load();
  while (batches.load() < seen + 100 * kWorkers) std::this_thread::yield();
  stop = true;
  for (auto& t : workers) t.join();
  EXPECT_EQ(mismatches.load(), 0u);
  EXPECT_EQ(exchange_->generation(), 1u + kReloads);
  EXPECT_EQ(counters_.reloads.value(), static_cast<std::uint64_t>(kReloads));
}

}  // namespace
}  // namespace verdictd::service
