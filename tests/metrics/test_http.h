// A minimal blocking HTTP/1.0 GET over loopback for the tests (no client
// library needed), and a promtool runner.
#pragma once

#include <string>

namespace verdictd::metrics::testing {

// Returns the response body of GET `path` on 127.0.0.1:`port`; throws on error.
std::string HttpGet(int port, const std::string& path = "/metrics");

// Runs `promtool check metrics` on `exposition`; returns its exit status and
// puts its output in `output`. -1: promtool not installed.
int PromtoolCheckMetrics(const std::string& exposition, std::string& output);

}  // namespace verdictd::metrics::testing
