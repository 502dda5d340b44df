// The capture reader of `verdictd replay`: libpcap's savefile parsing plus
// our link-layer offsets and the rule engine, over an arbitrary file. The
// input goes to a memory file; replay must end with 0 (replayed), 1
// (damaged partway, reported) or 2 (unreadable), never anything else. The
// rules (the embedded defaults) are compiled and their engine built once.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>

#include "fuzz_target.h"
#include "verdictd/config/loader.h"
#include "verdictd/rules/engine.h"
#include "verdictd/rules/replay.h"
#include "verdictd/rules/rule_set.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const int fd = memfd_create("capture.pcap", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  // Compiling rules costs far more than reading a small capture: once.
  // Building an engine allocates its flow tables: once too. The defaults
  // have no rules, so no state carries from one input to the next.
  static verdictd::rules::RuleEngine engine = [] {
    verdictd::rules::CompileOptions compile;
    compile.allow_unknown_interfaces = true;
    auto compiled = verdictd::rules::CompileConfig(verdictd::config::LoadDefaults().config, compile);
    if (compiled.rules == nullptr) std::abort();
    return compiled.rules;
  }();
  verdictd::rules::ReplayOptions options;
  options.pcap_path = "/proc/self/fd/" + std::to_string(fd);
  std::ostringstream out, err;
  const int status = verdictd::rules::ReplayCapture(engine, options, out, err);
  if (status < 0 || status > 2) std::abort();
  if (status != 0 && err.str().empty()) std::abort();  // a failure must say why
  return 0;
}
