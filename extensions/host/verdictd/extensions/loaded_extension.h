// One extension loaded from its shared object: the checks before anything in
// it runs, its process-scope lifecycle, and the control calls.
//
// Load() (control thread) checks, in order, and throws LoadError naming the
// file at the first failure: the directory is a directory owned by root and
// not writable by group or others; the file is a regular file (not a
// symbolic link) in it, owned by root and not writable by group or others;
// dlopen(RTLD_NOW | RTLD_LOCAL) of that path succeeds (the directory being
// root-owned and not writable by others, only root can swap the file after
// the check); the entry
// symbol exists; the ABI major matches and api_size covers version 1.0; the
// name matches the configured one; the required functions are present; and
// load(params) returns 0 (else its own error text is the message). The
// destructor calls unload() and dlclose(): it runs when the last chain that
// uses the extension is freed, i.e. after every worker moved to a newer
// policy (PolicyExchange::Reclaim), and after its arena work finished.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "verdictd/base/false_sharing.h"
#include "verdictd/config/config.h"
#include "verdictd/extension.h"
#include "verdictd/extensions/counters.h"

namespace verdictd::extensions {
class LoadedExtension;
}  // namespace verdictd::extensions

// The host handle an extension gets (opaque to it).
struct verdictd_host {
  verdictd::extensions::LoadedExtension* extension = nullptr;
};

namespace verdictd::extensions {

class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where and how extensions load. The owner check is root (0) in the
// service; tests may name their own uid.
struct LoadPolicy {
  std::string directory;
  unsigned owner_uid = 0;
};

class LoadedExtension {
 public:
  static std::shared_ptr<LoadedExtension> Load(const LoadPolicy& policy,
                                               const config::ExtensionEntry& entry,
                                               const verdictd_host_api_t* host_api,
                                               std::shared_ptr<ExtensionCounters> counters);
  ~LoadedExtension();
  LoadedExtension(const LoadedExtension&) = delete;
  LoadedExtension& operator=(const LoadedExtension&) = delete;

  const verdictd_extension_api_t& api() const noexcept { return *api_; }
  void* state() const noexcept { return state_; }
  const std::string& name() const noexcept { return entry_.name; }
  const std::string& path() const noexcept { return path_; }
  const config::ExtensionEntry& entry() const noexcept { return entry_; }
  void set_entry(const config::ExtensionEntry& entry) { entry_ = entry; }
  bool may_pend() const noexcept { return (api_->flags & VERDICTD_EXT_MAY_PEND) != 0; }
  ExtensionCounters& counters() const noexcept { return *counters_; }

  // Whether the workers run this extension, and on which marks: one word
  // (kGateStarted | group mask) so that a worker decides with one load per
  // packet. Read by the workers (relaxed), written by the control thread.
  static constexpr std::uint64_t kGateStarted = std::uint64_t{1} << 32;
  const std::atomic<std::uint64_t>& gate() const noexcept { return gate_; }
  bool started() const noexcept { return (gate_.load(std::memory_order_relaxed) & kGateStarted) != 0; }
  std::uint32_t group() const noexcept {
    return static_cast<std::uint32_t>(gate_.load(std::memory_order_relaxed));
  }
  void set_group(std::uint32_t mask) noexcept;
  // Arena work: jobs submitted (by workers) and finished (by arena threads),
  // on lines of their own so that neither side writes the other's. The
  // destructor waits until they are equal.
  alignas(base::kFalseSharingRange) std::atomic<std::uint64_t> work_submitted{0};
  alignas(base::kFalseSharingRange) std::atomic<std::uint64_t> work_finished{0};
  // No arena job of this extension is queued or running (when no chain can
  // submit more: finished is read first, so a running job's own submits
  // cannot make the two look equal).
  bool arena_idle() const noexcept {
    const std::uint64_t finished = work_finished.load(std::memory_order_acquire);
    return work_submitted.load(std::memory_order_acquire) == finished;
  }

  // Control calls: "" on success, else the extension's error text.
  std::string Start();
  std::string Stop();
  std::string Reset();
  std::string Info() const;

 private:
  LoadedExtension() = default;
  // Read by every worker for every packet: not in work_finished's range,
  // which an arena thread writes after every run of jobs.
  alignas(base::kFalseSharingRange) std::atomic<std::uint64_t> gate_{0};
  void* handle_ = nullptr;
  const verdictd_extension_api_t* api_ = nullptr;
  void* state_ = nullptr;
  config::ExtensionEntry entry_;
  std::string path_;
  std::shared_ptr<ExtensionCounters> counters_;
  verdictd_host host_{};
};

// The help and usage text of an extension file, without adding it: opens it
// with the same checks, reads the entry struct, closes it. Throws LoadError.
std::string ExtensionHelp(const LoadPolicy& policy, const std::string& file);

}  // namespace verdictd::extensions
