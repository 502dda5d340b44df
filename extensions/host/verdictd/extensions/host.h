// The extension host: one per process. It loads the configured extensions
// (LoadedExtension), builds one chain decider per worker for each policy,
// owns the oneTBB arena that asynchronous work runs in and every worker's
// table of pending packets, and answers the control commands.
//
// Threads: Prepare(), MakeChain(), the control commands and Collector() run
// on the control thread (they lock a mutex, may allocate and throw). The
// DeferredVerdicts calls run on the worker named by their argument
// (noexcept, no allocation, no lock). complete() (the host service) runs on
// any thread. The host must outlive every policy and worker that uses it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "verdictd/config/config.h"
#include "verdictd/decider/decider.h"
#include "verdictd/extensions/loaded_extension.h"

namespace verdictd::extensions {

class PendingTable;

// What a policy's chains are made of: the extensions in order and the
// host's verdict settings of that configuration.
struct ChainPlan {
  std::vector<std::shared_ptr<LoadedExtension>> links;
  queueio::Verdict end_verdict;
  queueio::Verdict timeout_verdict;
  queueio::Verdict overflow_verdict;
  std::uint64_t timeout_ns = 0;
  // Interface names by index, read when the plan was made (if_nameindex).
  std::vector<std::array<char, 16>> interface_names;
};

struct HostOptions {
  std::size_t worker_slots = 1;  // workers that may ever exist (PolicyExchange capacity)
  unsigned owner_uid = 0;        // who must own the directory and files (root)
};

// The result of a control command: ok, and text for the client.
struct CommandResult {
  bool ok = true;
  std::string text;
};

class ExtensionHost final : public decider::DeferredVerdicts {
 public:
  // `settings`: [extension_host] of the startup configuration (arena size,
  // pending slots and packet bytes are fixed from here on).
  ExtensionHost(const config::ExtensionsSection& settings, const HostOptions& options);
  ~ExtensionHost() override;
  ExtensionHost(const ExtensionHost&) = delete;
  ExtensionHost& operator=(const ExtensionHost&) = delete;

  // Control thread: loads what `section` (plus the control commands' changes
  // since) needs, reuses extensions loaded with the same file and
  // parameters, and returns the plan. An extension that fails to load is
  // left out, its one-line error (naming the file) appended to `errors`.
  std::shared_ptr<const ChainPlan> Prepare(const config::ExtensionsSection& section,
                                           std::vector<std::string>& errors);
  // Control thread: the chain decider of `worker` (instantiates every
  // extension of the plan for it). nullptr when the plan is empty. Throws
  // std::runtime_error when an instance cannot be made.
  std::unique_ptr<decider::Decider> MakeChain(const std::shared_ptr<const ChainPlan>& plan,
                                              std::size_t worker);

  // Control commands (ctl ext ...). Add/Del/Group change the host's overlay
  // on the configured chain; the caller then rebuilds the policy (Prepare
  // applies the overlay). Start/Stop/Reset/Info act on the loaded extension.
  CommandResult List() const;
  CommandResult Add(const std::string& name, const std::string& parameters);
  CommandResult Del(const std::string& name);
  CommandResult Group(const std::string& name, std::uint32_t mask);
  CommandResult Start(const std::string& name);
  CommandResult Stop(const std::string& name);
  CommandResult Reset(const std::string& name);
  CommandResult Info(const std::string& name) const;
  CommandResult Help(const std::string& name) const;

  // Per-extension metrics (summed over the workers at scrape).
  std::shared_ptr<prometheus::Collectable> Collector();

  // decider::DeferredVerdicts (worker threads).
  std::size_t Poll(std::size_t worker, std::uint64_t now_ns,
                   decider::ReadyVerdicts& ready) noexcept override;
  std::size_t pending(std::size_t worker) const noexcept override;
  queueio::Verdict Abandon(std::size_t worker, std::uint32_t id) noexcept override;
  std::size_t ExpireAll(std::size_t worker, decider::ReadyVerdicts& ready) noexcept override;
  // poll() on `fd` and the worker's eventfd, which a completion writes only
  // when the worker is about to sleep.
  bool Wait(std::size_t worker, int fd, int timeout_ms, std::uint64_t now_ns) noexcept override;
  // Publishes the jobs extensions submitted on this worker thread during the
  // batch (one queue claim for all of them), and stages later ones.
  void Dispatch(std::size_t worker) noexcept override;
  // Worker `worker`'s waits with packets pending, the eventfd wake-ups
  // among them and the waits that ran out of time. Any thread.
  struct WaitStats {
    std::uint64_t waits = 0;
    std::uint64_t wakeups = 0;
    std::uint64_t timeouts = 0;
  };
  WaitStats wait_stats(std::size_t worker) const noexcept;
  // Control thread: chains a reload freed while packets that may resume
  // them (an asynchronous NEXT) were pending, after freeing those that no
  // packet needs any more.
  std::size_t retired_chains();

  // The host services table handed to extensions.
  const verdictd_host_api_t* host_api() const noexcept;
  // Internal (host services): the running host, the arena, the tables.
  static ExtensionHost* Running() noexcept;
  int Submit(LoadedExtension& extension, void (*work)(void*), void* arg) noexcept;
  void RunJobs() noexcept;  // an arena task: runs submitted jobs until none is left
  void PublishStagedJobs() noexcept;  // this thread's staged jobs go to the arena
  // Up to `jobs` arena tasks for queued jobs (one per job, since a job may
  // block), unless enough run.
  void StartDrainers(std::size_t jobs) noexcept;
  bool Complete(std::uint64_t token, verdictd_result_t result, const verdictd_verdict_t* verdict,
                std::uint32_t new_len) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace verdictd::extensions
