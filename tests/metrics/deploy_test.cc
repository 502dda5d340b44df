// The deploy/ files are checked against what verdictd really exports: the
// Grafana dashboard is valid JSON whose queries name only exported metrics,
// the alerting rules pass `promtool check rules` and their own
// `promtool test rules` cases, and the scrape configuration passes
// `promtool check config`.
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "verdictd/metrics/collectors.h"

namespace verdictd::metrics {
namespace {

const std::string kSource = VERDICTD_SOURCE_DIR;
const std::string kPromtool = VERDICTD_PROMTOOL;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every sample name a fully populated verdictd exposition carries.
std::set<std::string> ExportedSampleNames() {
  WorkerCounters counters;
  counters.up = true;
  counters.tid = static_cast<int>(syscall(SYS_gettid));  // so worker CPU time is exported
  char path[] = "/tmp/verdictd-nfqueue-XXXXXX";
  const int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << "    0  1  0 2 65535 0 0 0 1\n";
  QueueCollector queues(path);
  queues.AddWorker(0, counters);
  ServiceCounters service;
  const std::string text = SerializeText(queues) + SerializeText(ServiceCollector(&service)) +
                           SerializeText(ProcessCollector());
  std::remove(path);
  std::set<std::string> names;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    names.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return names;
}

// Metric names used by a PromQL expression: identifiers outside quoted
// strings that start with verdictd_ or process_.
std::set<std::string> MetricNamesIn(const std::string& expr) {
  const std::string unquoted = std::regex_replace(expr, std::regex("\"[^\"]*\"|'[^']*'"), "\"\"");
  static const std::regex identifier("[a-zA-Z_:][a-zA-Z0-9_:]*");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(unquoted.begin(), unquoted.end(), identifier); it != std::sregex_iterator();
       ++it) {
    const std::string name = it->str();
    if (name.rfind("verdictd_", 0) == 0 || name.rfind("process_", 0) == 0) names.insert(name);
  }
  return names;
}

void CollectExprs(const nlohmann::json& node, std::vector<std::string>& out) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if ((key == "expr" || key == "query") && value.is_string()) out.push_back(value.get<std::string>());
      CollectExprs(value, out);
    }
  } else if (node.is_array()) {
    for (const auto& value : node) CollectExprs(value, out);
  }
}

TEST(Deploy, grafana_dashboard_is_json_and_queries_only_exported_metrics) {
  const nlohmann::json dashboard =
      nlohmann::json::parse(ReadFile(kSource + "/deploy/grafana/verdictd-dashboard.json"));  // throws if invalid
  ASSERT_TRUE(dashboard.contains("panels"));
  std::vector<std::string> exprs;
  CollectExprs(dashboard, exprs);
  ASSERT_GE(exprs.size(), 10u);
  const auto exported = ExportedSampleNames();
  std::set<std::string> used;
  for (const auto& expr : exprs) {
    for (const auto& name : MetricNamesIn(expr)) {
      EXPECT_TRUE(exported.count(name)) << name << " (in " << expr << ") is not exported";
      used.insert(name);
    }
  }
  // The panels the issue asks for: throughput, verdict mix, kernel drops, latency percentiles.
  for (const char* needed : {"verdictd_received_packets_total", "verdictd_verdicts_total",
                             "verdictd_kernel_dropped_packets_total", "verdictd_verdict_latency_seconds_bucket"}) {
    EXPECT_TRUE(used.count(needed)) << "dashboard has no panel on " << needed;
  }
}

TEST(Deploy, dashboard_check_catches_an_unknown_metric) {
  const auto exported = ExportedSampleNames();
  const auto names = MetricNamesIn("rate(verdictd_no_such_total{job=\"verdictd_x\"}[5m]) / verdictd_verdicts_total");
  EXPECT_EQ(names, (std::set<std::string>{"verdictd_no_such_total", "verdictd_verdicts_total"}));
  EXPECT_FALSE(exported.count("verdictd_no_such_total"));
  EXPECT_TRUE(exported.count("verdictd_verdicts_total"));
}

TEST(Deploy, alert_rules_use_exported_metrics) {
  const std::string rules = ReadFile(kSource + "/deploy/prometheus/verdictd-alerts.yml");
  const auto exported = ExportedSampleNames();
  std::istringstream in(rules);
  std::string line;
  int exprs = 0;
  while (std::getline(in, line)) {
    const auto at = line.find("expr:");
    if (at == std::string::npos) continue;
    ++exprs;
    for (const auto& name : MetricNamesIn(line.substr(at + 5))) {
      EXPECT_TRUE(exported.count(name)) << name << " in alert rule is not exported: " << line;
    }
  }
  EXPECT_GE(exprs, 5);
}

int RunShell(const std::string& command) {
  const int status = std::system((command + " >/tmp/verdictd-promtool.out 2>&1").c_str());
  if (status != 0) std::cerr << ReadFile("/tmp/verdictd-promtool.out");
  return status;
}

TEST(Deploy, promtool_accepts_rules_rule_tests_and_scrape_config) {
  if (kPromtool.empty() || kPromtool.find("NOTFOUND") != std::string::npos) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  const std::string dir = kSource + "/deploy/prometheus";
  EXPECT_EQ(RunShell(kPromtool + " check rules " + dir + "/verdictd-alerts.yml"), 0);
  EXPECT_EQ(RunShell("cd " + dir + " && " + kPromtool + " test rules verdictd-alerts.test.yml"), 0);
  EXPECT_EQ(RunShell(kPromtool + " check config " + dir + "/prometheus.yml"), 0);
}

}  // namespace
}  // namespace verdictd::metrics
