#include "verdictd/metrics/metrics_server.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_http.h"
#include "verdictd/metrics/collectors.h"

namespace verdictd::metrics {
namespace {

TEST(MetricsServer, serves_registered_collectables_on_a_free_port) {
  MetricsServer server("127.0.0.1:0");
  ASSERT_GT(server.port(), 0);
  WorkerCounters counters;
  counters.packets.Add(42);
  auto queues = std::make_shared<QueueCollector>("");
  queues->AddWorker(5, counters);
  server.AddCollectable(queues);
  const std::string body = testing::HttpGet(server.port());
  EXPECT_NE(body.find("verdictd_received_packets_total{queue=\"5\"} 42\n"), std::string::npos) << body;
  EXPECT_NE(body.find("process_resident_memory_bytes "), std::string::npos) << body;

  server.RemoveCollectable(queues);
  EXPECT_EQ(testing::HttpGet(server.port()).find("verdictd_received_packets_total"), std::string::npos);
}

TEST(MetricsServer, port_in_use_is_a_one_line_error_naming_the_address) {
  MetricsServer first("127.0.0.1:0");
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());
  try {
    MetricsServer second(taken);
    FAIL() << "second server on " << taken << " started";
  } catch (const MetricsError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(taken), std::string::npos) << message;
    EXPECT_NE(message.find("already in use"), std::string::npos) << message;
    EXPECT_NE(message.find("[metrics] listen"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(MetricsServer, stops_promptly) {
  // civetweb alone needs up to 2 s to notice the stop; every daemon exit waits for it.
  auto server = std::make_unique<MetricsServer>("127.0.0.1:0");
  testing::HttpGet(server->port());
  const auto start = std::chrono::steady_clock::now();
  server.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
}

TEST(MetricsServer, rejects_a_listen_string_without_a_port) {
  EXPECT_THROW(MetricsServer("127.0.0.1"), MetricsError);
  EXPECT_THROW(MetricsServer("127.0.0.1:http"), MetricsError);
  EXPECT_THROW(MetricsServer("127.0.0.1:70000"), MetricsError);
  EXPECT_THROW(MetricsServer("192.0.2.1:9470"), MetricsError);  // not a local address
}

// Workers count on their own threads while the scrape runs on the server's:
// every scrape sees monotonic values, and after the workers stop the scrape
// equals exactly what they counted (TSan checks the reads are race-free).
TEST(MetricsServer, scrapes_while_workers_count_and_ends_exact) {
  MetricsServer server("127.0.0.1:0");
  constexpr int kWorkers = 2;
  constexpr std::uint64_t kPackets = 200'000;
  std::vector<WorkerCounters> counters(kWorkers);
  auto queues = std::make_shared<QueueCollector>("");
  for (int i = 0; i < kWorkers; ++i) queues->AddWorker(static_cast<std::uint16_t>(i), counters[static_cast<std::size_t>(i)]);
  server.AddCollectable(queues);

  std::vector<std::thread> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.emplace_back([&c = counters[static_cast<std::size_t>(i)]] {
      c.up = true;
      for (std::uint64_t n = 0; n < kPackets; ++n) {
        c.packets.Add();
        c.bytes.Add(100);
        c.verdicts[0].Add();
        c.verdict_latency.Observe(n % 5000);
      }
      c.up = false;
    });
  }
  auto packets_of = [](const std::string& body, int queue) {
    const std::string key = "verdictd_received_packets_total{queue=\"" + std::to_string(queue) + "\"} ";
    const auto at = body.find(key);
    return at == std::string::npos ? -1.0 : std::stod(body.substr(at + key.size()));
  };
  double last = 0;
  for (int scrape = 0; scrape < 20; ++scrape) {
    const double now = packets_of(testing::HttpGet(server.port()), 0);
    EXPECT_GE(now, last);
    last = now;
  }
  for (auto& t : workers) t.join();
  const std::string body = testing::HttpGet(server.port());
  for (int i = 0; i < kWorkers; ++i) {
    const std::string q = "{queue=\"" + std::to_string(i) + "\"}";
    EXPECT_EQ(packets_of(body, i), static_cast<double>(kPackets));
    EXPECT_NE(body.find("verdictd_verdict_latency_seconds_count" + q + " " + std::to_string(kPackets) + "\n"),
              std::string::npos);
    EXPECT_NE(body.find("verdictd_received_bytes_total" + q + " " + std::to_string(kPackets * 100) + "\n"),
              std::string::npos);
  }
  std::string output;
  const int status = testing::PromtoolCheckMetrics(body, output);
  if (status != -1) {
    EXPECT_EQ(status, 0) << output << "\n" << body;
  }
}

}  // namespace
}  // namespace verdictd::metrics
