// Offline replay: runs the rule engine of a configuration over a pcap file
// and prints each packet's verdict and deciding rule, then a summary.
// `verdictd replay --config FILE capture.pcap` calls ReplayMain().
//
// Control plane / tool code: allocates, prints, never throws (problems are
// printed and become the exit status).
#pragma once

#include <iosfwd>
#include <memory>
#include <string>

namespace verdictd::rules {

struct ReplayOptions {
  std::string config_path;  // empty: the embedded defaults (no rules)
  std::string pcap_path;
  bool summary_only = false;
};

// 0: replayed; 1: the capture is damaged partway (truncated, a corrupt
// record): every record before the damage was replayed and summarised, and
// `err` names the record number and byte offset where reading stopped;
// 2: the configuration, the rules or the capture could not be read at all.
int RunReplay(const ReplayOptions& options, std::ostream& out, std::ostream& err);

class RuleSet;
class RuleEngine;
// The capture part of RunReplay, over rules compiled once (the fuzz target
// replays many captures through one rule set). A fresh engine per call, so
// rate limits and bypass start empty; options.config_path is not read.
// Same exit codes (never 2 for the rules).
int ReplayCapture(const std::shared_ptr<const RuleSet>& rules, const ReplayOptions& options,
                  std::ostream& out, std::ostream& err);
// The same through an engine the caller keeps: its rate limits and bypassed
// flows carry over from capture to capture, and its per-rule counters, which
// the summary prints, add up.
int ReplayCapture(RuleEngine& engine, const ReplayOptions& options, std::ostream& out,
                  std::ostream& err);

// argv[0] is "replay": parses `--config FILE [--summary] capture.pcap`.
int ReplayMain(int argc, char** argv);

}  // namespace verdictd::rules
