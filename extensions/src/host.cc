#include "verdictd/extensions/host.h"

#include <net/if.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <chrono>
#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>
#include <thread>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "chain_decider.h"
#include "pending_table.h"
#include "verdictd/base/false_sharing.h"
#include "verdictd/config/values.h"
#include "verdictd/extensions/checksum.h"

namespace verdictd::extensions {
namespace {

std::atomic<ExtensionHost*> g_running{nullptr};

queueio::Verdict ToVerdict(const config::VerdictSetting& setting) noexcept {
  queueio::Verdict verdict;
  verdict.kind = static_cast<queueio::VerdictKind>(setting.kind);
  verdict.target_queue = setting.target_queue;
  return verdict;
}

// ---- The host services (verdictd_host_api_t) ----

void HostLog(verdictd_host_t* host, int level, const char* message) {
  const std::string name =
      host != nullptr && host->extension != nullptr ? host->extension->name() : "?";
  const char* text = message != nullptr ? message : "";
  switch (level) {
    case VERDICTD_LOG_DEBUG:
      spdlog::debug("extension {}: {}", name, text);
      break;
    case VERDICTD_LOG_INFO:
      spdlog::info("extension {}: {}", name, text);
      break;
    case VERDICTD_LOG_WARN:
      spdlog::warn("extension {}: {}", name, text);
      break;
    default:
      spdlog::error("extension {}: {}", name, text);
      break;
  }
}

std::uint8_t* HostEdit(verdictd_packet_t* packet, std::uint32_t new_len) {
  if (packet == nullptr) return nullptr;
  auto* context = reinterpret_cast<PacketContext*>(packet);
  if (new_len == 0 || new_len > context->capacity || context->scratch == nullptr) return nullptr;
  if (!context->edited) {
    std::memcpy(context->scratch, packet->data, std::min(packet->data_len, new_len));
    context->edited = true;
  }
  if (new_len > packet->data_len) {
    std::memset(context->scratch + packet->data_len, 0, new_len - packet->data_len);
  }
  packet->data = context->scratch;
  packet->data_len = new_len;
  return context->scratch;
}

int HostSubmit(verdictd_host_t* host, void (*work)(void*), void* arg) {
  ExtensionHost* running = ExtensionHost::Running();
  if (running == nullptr || host == nullptr || host->extension == nullptr || work == nullptr) {
    return -1;
  }
  return running->Submit(*host->extension, work, arg);
}

void HostComplete(std::uint64_t token, verdictd_result_t result, const verdictd_verdict_t* verdict,
                  std::uint32_t new_len) {
  if (ExtensionHost* running = ExtensionHost::Running()) {
    running->Complete(token, result, verdict, new_len);
  }
}

void HostCount(verdictd_worker_t* worker, std::uint32_t index, std::uint64_t delta) {
  if (worker == nullptr || index >= kMaxExtensionCounters) return;
  reinterpret_cast<WorkerHandle*>(worker)->counters->custom[index].Add(delta);
}

int HostRepair(std::uint8_t* data, std::uint32_t len, std::uint32_t flags) {
  if (data == nullptr || flags != 0) return -1;
  switch (RepairChecksums(std::span<std::uint8_t>(data, len))) {
    case RepairStatus::kRepaired:
      return 0;
    case RepairStatus::kHeaderOnly:
      return 1;
    case RepairStatus::kUnsupported:
      break;
  }
  return -1;
}

// Work handed to the arena, in a bounded lock-free MPMC queue (Vyukov's),
// drained by at most arena_concurrency TBB tasks: a task per job cost more
// than trivial work itself (an allocation and a wake-up per packet), so a
// receive batch's jobs ride on the one task that is already running. The
// hand-off of the job's data goes through these atomics rather than TBB's
// internals, which keeps it visible to ThreadSanitizer (Debian's libtbb is
// not instrumented).
struct Job {
  void (*work)(void*) = nullptr;
  void* arg = nullptr;
  LoadedExtension* owner = nullptr;
  // The pending slot the job will complete (ArmedSlotHint()), when
  // a worker submitted it from process(), else 0: the drainer fetches that
  // slot's line before it runs the jobs it took, so their completions do not
  // each wait for it to cross from the worker's core.
  std::uint32_t slot_hint = 0;
};

// Adds each owner's number of jobs to its `count` (work_submitted or
// work_finished): one locked add per run of consecutive jobs of one owner,
// not one per job.
void CountPerOwner(const Job* jobs, std::size_t n,
                   std::atomic<std::uint64_t> LoadedExtension::*count) noexcept {
  for (std::size_t i = 0; i < n;) {
    LoadedExtension* owner = jobs[i].owner;
    std::size_t same = 1;
    while (i + same < n && jobs[i + same].owner == owner) ++same;
    (owner->*count).fetch_add(same, std::memory_order_acq_rel);
    i += same;
  }
}

class JobQueue {
 public:
  explicit JobQueue(std::size_t capacity) : cells_(capacity), mask_(capacity - 1) {
    for (std::size_t i = 0; i < capacity; ++i) {
      cells_[i].sequence.store(static_cast<std::uint32_t>(i), std::memory_order_relaxed);
    }
  }
  std::size_t capacity() const noexcept { return cells_.size(); }
  // Jobs queued or being written, as one producer sees it (approximate).
  std::size_t size() const noexcept {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    return tail > head ? static_cast<std::size_t>(tail - head) : 0;
  }
  // All `n` jobs in consecutive cells with one claim of the tail, or none
  // (false: not room for all of them).
  bool Push(const Job* jobs, std::size_t n) noexcept {
    if (n == 0 || n > cells_.size()) return n == 0;
    std::uint64_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      bool stale = false;
      for (std::size_t i = 0; i < n; ++i) {
        // A cell seen free stays free until a producer claims its position.
        const std::uint32_t seq = cells_[(pos + i) & mask_].sequence.load(std::memory_order_acquire);
        const std::int32_t diff = Distance(seq, pos + i);
        if (diff < 0) return false;  // full
        if (diff > 0) {
          stale = true;  // another producer claimed `pos` meanwhile
          break;
        }
      }
      if (stale) {
        pos = tail_.load(std::memory_order_relaxed);
        continue;
      }
      if (tail_.compare_exchange_weak(pos, pos + n, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
        for (std::size_t i = 0; i < n; ++i) {
          Cell& cell = cells_[(pos + i) & mask_];
          cell.work = jobs[i].work;
          cell.arg = jobs[i].arg;
          cell.owner = jobs[i].owner;
          cell.slot_hint = jobs[i].slot_hint;
          cell.sequence.store(static_cast<std::uint32_t>(pos + i + 1), std::memory_order_release);
        }
        return true;
      }
    }
  }
  // May say "not empty" for a queue a concurrent Pop() is emptying; never
  // "empty" after a seq_cst operation that followed a Push() in the single
  // total order (see RunJobs): the push is a seq_cst CAS on tail_.
  bool HasJob() const noexcept {
    return tail_.load(std::memory_order_seq_cst) != head_.load(std::memory_order_seq_cst);
  }
  // Up to `max` queued jobs, from consecutive cells with one claim of the
  // head; 0 when the queue is empty.
  std::size_t Pop(Job* jobs, std::size_t max) noexcept {
    std::uint64_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      // A filled cell stays filled until a consumer claims its position.
      std::size_t n = 0;
      bool stale = false;
      while (n < max) {
        const std::uint32_t seq = cells_[(pos + n) & mask_].sequence.load(std::memory_order_acquire);
        const std::int32_t diff = Distance(seq, pos + n + 1);
        if (diff < 0) break;  // not filled yet
        if (diff > 0) {
          stale = true;  // another consumer took `pos` meanwhile
          break;
        }
        ++n;
      }
      if (stale) {
        pos = head_.load(std::memory_order_relaxed);
        continue;
      }
      if (n == 0) return 0;  // empty
      if (head_.compare_exchange_weak(pos, pos + n, std::memory_order_relaxed)) {
        for (std::size_t i = 0; i < n; ++i) {
          Cell& cell = cells_[(pos + i) & mask_];
          jobs[i] = Job{cell.work, cell.arg, cell.owner, cell.slot_hint};
          cell.sequence.store(static_cast<std::uint32_t>(pos + i + mask_ + 1),
                              std::memory_order_release);
        }
        return n;
      }
    }
  }

 private:
  // 32 bytes, two to a cache line: the sequence is the low 32 bits of the
  // position (the queue is far smaller than 2^31, so the signed distance
  // between the two stays exact across wrap-around).
  struct Cell {
    std::atomic<std::uint32_t> sequence{0};
    std::uint32_t slot_hint = 0;
    void (*work)(void*) = nullptr;
    void* arg = nullptr;
    LoadedExtension* owner = nullptr;
  };
  static_assert(sizeof(Cell) == 32);
  static std::int32_t Distance(std::uint32_t seq, std::uint64_t pos) noexcept {
    return static_cast<std::int32_t>(seq - static_cast<std::uint32_t>(pos));
  }
  std::vector<Cell> cells_;
  std::uint64_t mask_;
  alignas(base::kFalseSharingRange) std::atomic<std::uint64_t> tail_{0};
  alignas(base::kFalseSharingRange) std::atomic<std::uint64_t> head_{0};
};

// The jobs a worker thread's extensions submitted during its current receive
// batch. They go to the queue together when the batch ends (Dispatch), the
// stage fills, or the worker polls or waits: one claim of the queue's tail,
// one count per extension and one look at the drainers per batch instead of
// per packet, so the worker and the arena thread stop trading cache lines
// for every job. Only a thread that dispatches batches (a worker) stages;
// any other thread's submit goes to the queue at once.
struct JobStage {
  static constexpr std::size_t kCapacity = 64;  // one receive batch
  std::array<Job, kCapacity> jobs{};
  std::size_t count = 0;
  std::size_t room = 0;  // queue room granted to this stage at its first job
  bool open = false;     // this thread dispatches (a worker)
};
thread_local JobStage t_stage;

constexpr std::size_t kMaxQueuedJobs = 1 << 16;
constexpr std::size_t kJobsPerTake = 16;  // a lone drainer's run (RunJobs)
// A stage may fill only the first half of the queue: the other half is the
// room staged batches of other workers may still be publishing into (each
// holds at most JobStage::kCapacity jobs, so up to 512 workers always fit),
// and a job accepted into a stage is one the queue will take.
constexpr std::size_t kStageableJobs = kMaxQueuedJobs / 2;

struct WorkerState {
  std::unique_ptr<PendingTable> table;
  std::unique_ptr<std::uint8_t[]> scratch;
};

}  // namespace

struct ExtensionHost::Impl {
  config::ExtensionsSection startup;
  HostOptions options;
  LoadPolicy load_policy;
  verdictd_host_api_t api{};
  // Arena work may block (that is what it is for), so the arena's threads
  // are its own: no slot is reserved for a joining thread (workers only
  // enqueue), and TBB's process-wide limit (one less than the CPUs by
  // default) is raised to the configured concurrency.
  tbb::global_control parallelism;
  tbb::task_arena arena;
  // Drainer tasks enqueued and not ended (each runs every job it finds,
  // and none ends while a job is queued): the destructor waits for 0.
  std::atomic<std::int64_t> arena_work{0};
  JobQueue jobs{kMaxQueuedJobs};
  std::atomic<int> drainers{0};  // arena tasks running RunJobs()
  int max_drainers = 1;
  ChainGraveyard graveyard;  // chains a reload freed with packets still pending

  mutable std::mutex mutex;  // control thread state below
  std::map<std::string, std::shared_ptr<ExtensionCounters>> counters;
  std::map<std::string, std::shared_ptr<LoadedExtension>> loaded;  // the current chain's
  std::vector<std::string> order;                                  // its names, in order
  // Changes made by control commands, applied over the configured chain.
  std::vector<config::ExtensionEntry> added;
  std::set<std::string> deleted;
  std::map<std::string, std::uint32_t> groups;
  std::map<std::string, std::shared_ptr<LoadedExtension>> preloaded;  // by Add()

  std::vector<std::unique_ptr<WorkerState>> storage;
  std::unique_ptr<std::atomic<WorkerState*>[]> workers;

  explicit Impl(const config::ExtensionsSection& settings, const HostOptions& host_options)
      : startup(settings),
        options(host_options),
        parallelism(tbb::global_control::max_allowed_parallelism,
                    std::max<std::size_t>(tbb::global_control::active_value(
                                              tbb::global_control::max_allowed_parallelism),
                                          std::size_t{settings.arena_concurrency} + 1)),
        arena(static_cast<int>(std::max<std::uint32_t>(1, settings.arena_concurrency)), 0),
        storage(host_options.worker_slots),
        workers(std::make_unique<std::atomic<WorkerState*>[]>(host_options.worker_slots)) {
    load_policy.directory = settings.directory;
    load_policy.owner_uid = host_options.owner_uid;
    max_drainers = static_cast<int>(std::max<std::uint32_t>(1, settings.arena_concurrency));
    api.api_version = VERDICTD_HOST_API_VERSION;
    api.api_size = sizeof(verdictd_host_api_t);
    api.log = HostLog;
    api.edit = HostEdit;
    api.submit = HostSubmit;
    api.complete = HostComplete;
    api.count = HostCount;
    api.repair_checksums = HostRepair;
    api.max_edit_len = settings.max_packet_bytes;
    for (std::size_t i = 0; i < host_options.worker_slots; ++i) {
      workers[i].store(nullptr, std::memory_order_relaxed);
    }
  }

  std::shared_ptr<ExtensionCounters> CountersFor(const std::string& name) {
    auto& slot = counters[name];
    if (!slot) slot = std::make_shared<ExtensionCounters>(name, options.worker_slots);
    return slot;
  }

  WorkerState* Worker(std::size_t worker) const noexcept {
    return worker < options.worker_slots ? workers[worker].load(std::memory_order_acquire) : nullptr;
  }

  std::shared_ptr<LoadedExtension> Find(const std::string& name) const {
    auto it = loaded.find(name);
    return it == loaded.end() ? nullptr : it->second;
  }
};

ExtensionHost::ExtensionHost(const config::ExtensionsSection& settings, const HostOptions& options)
    : impl_(std::make_unique<Impl>(settings, options)) {
  g_running.store(this, std::memory_order_release);
}

ExtensionHost::~ExtensionHost() {
  // Chains are gone (they hold the extensions); arena work of extensions
  // whose chains went may still run. A thread that was a worker of this
  // host (a test's) starts its next host unstaged.
  PublishStagedJobs();
  t_stage.open = false;
  while (impl_->arena_work.load(std::memory_order_acquire) > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->graveyard.Sweep(true);  // no worker runs any more
  impl_->preloaded.clear();
  impl_->loaded.clear();
  ExtensionHost* self = this;
  g_running.compare_exchange_strong(self, nullptr);
}

ExtensionHost* ExtensionHost::Running() noexcept { return g_running.load(std::memory_order_acquire); }

const verdictd_host_api_t* ExtensionHost::host_api() const noexcept { return &impl_->api; }

int ExtensionHost::Submit(LoadedExtension& extension, void (*work)(void*), void* arg) noexcept {
  Impl& s = *impl_;
  JobStage& stage = t_stage;
  if (stage.open) {
    if (stage.count == JobStage::kCapacity) PublishStagedJobs();
    if (stage.count == 0) {
      const std::size_t queued = s.jobs.size();
      stage.room = queued < kStageableJobs ? kStageableJobs - queued : 0;
    }
    if (stage.count >= stage.room) return -1;  // the queue is full
    stage.jobs[stage.count++] = Job{work, arg, &extension, ArmedSlotHint()};
    return 0;
  }
  extension.work_submitted.fetch_add(1, std::memory_order_acq_rel);
  const Job job{work, arg, &extension};
  if (!s.jobs.Push(&job, 1)) {
    extension.work_finished.fetch_add(1, std::memory_order_acq_rel);  // never ran
    return -1;
  }
  StartDrainers(1);
  return 0;
}

void ExtensionHost::PublishStagedJobs() noexcept {
  JobStage& stage = t_stage;
  const std::size_t n = stage.count;
  if (n == 0) return;
  Impl& s = *impl_;
  // Counted before they are queued: a job may finish as soon as it is in.
  CountPerOwner(stage.jobs.data(), n, &LoadedExtension::work_submitted);
  // The room was granted at Submit(); if other producers overran their
  // half anyway, wait for the drainers rather than lose accepted work.
  while (!s.jobs.Push(stage.jobs.data(), n)) {
    StartDrainers(n);
    std::this_thread::yield();
  }
  stage.count = 0;
  // One drainer per job, as a job submitted alone gets: a drainer runs its
  // jobs one after another, so a batch's blocking lookups behind a single
  // drainer would wait for each other.
  StartDrainers(n);
}

void ExtensionHost::StartDrainers(std::size_t jobs) noexcept {
  Impl& s = *impl_;
  // The push was a seq_cst CAS on the queue's tail, a leaving drainer's
  // decrement is seq_cst too, and each then reads the other's variable
  // seq_cst: either that drainer sees this job, or this sees it still
  // counted (and it looks again). No standalone fences: ThreadSanitizer
  // does not model them.
  int active = s.drainers.load(std::memory_order_seq_cst);
  while (jobs > 0 && active < s.max_drainers) {
    if (s.drainers.compare_exchange_weak(active, active + 1, std::memory_order_acq_rel)) {
      s.arena_work.fetch_add(1, std::memory_order_acq_rel);  // the task's own count
      try {
        // It captures nothing (the jobs travel in the queue).
        s.arena.enqueue([] {
          if (ExtensionHost* host = ExtensionHost::Running()) host->RunJobs();
        });
      } catch (...) {
        // Out of memory: the jobs wait for the next drainer.
        s.drainers.fetch_sub(1, std::memory_order_acq_rel);
        s.arena_work.fetch_sub(1, std::memory_order_acq_rel);
        return;
      }
      --jobs;
      ++active;
    }
  }
}

void ExtensionHost::RunJobs() noexcept {
  Impl& s = *impl_;
  // A lone drainer runs every job in turn anyway, so it takes them a run at
  // a time and fetches their slots' lines together (the misses overlap).
  // With more drainers it takes one at a time: a job held back here behind
  // a blocking one could have run on another drainer.
  const std::size_t take = s.max_drainers == 1 ? kJobsPerTake : 1;
  std::array<Job, kJobsPerTake> taken;
  const auto PrefetchSlot = [&s](std::uint32_t hint) noexcept {
    if (WorkerState* worker = s.Worker(HintWorker(hint)); worker != nullptr && worker->table) {
      worker->table->Prefetch(hint);
    }
  };
  for (;;) {
    std::size_t n = 0;
    while ((n = s.jobs.Pop(taken.data(), take)) > 0) {
      for (std::size_t i = 0; i < n; ++i) {
        if (taken[i].slot_hint != 0) PrefetchSlot(taken[i].slot_hint);
      }
      for (std::size_t i = 0; i < n; ++i) taken[i].work(taken[i].arg);
      // Counted after they all ran, the last touch of each owner (it stays
      // loaded until its count is in).
      CountPerOwner(taken.data(), n, &LoadedExtension::work_finished);
    }
    s.drainers.fetch_sub(1, std::memory_order_seq_cst);
    if (!s.jobs.HasJob()) break;
    // A job came after the last Pop() and its Submit() saw this task still
    // counted: take it up again unless enough other drainers run.
    int active = s.drainers.load(std::memory_order_relaxed);
    bool again = false;
    while (active < s.max_drainers && !again) {
      again = s.drainers.compare_exchange_weak(active, active + 1, std::memory_order_acq_rel);
    }
    if (!again) break;
  }
  s.arena_work.fetch_sub(1, std::memory_order_release);  // last touch of the host
}

void ExtensionHost::Dispatch(std::size_t /*worker*/) noexcept {
  PublishStagedJobs();
  t_stage.open = true;
}

bool ExtensionHost::Complete(std::uint64_t token, verdictd_result_t result,
                             const verdictd_verdict_t* verdict, std::uint32_t new_len) noexcept {
  WorkerState* state = impl_->Worker(static_cast<std::size_t>(token >> 48));
  if (state == nullptr || !state->table) return false;
  return state->table->Complete(token, result, verdict, new_len);
}

std::shared_ptr<const ChainPlan> ExtensionHost::Prepare(const config::ExtensionsSection& section,
                                                        std::vector<std::string>& errors) {
  std::lock_guard lock(impl_->mutex);
  Impl& s = *impl_;
  s.load_policy.directory = section.directory;
  std::vector<config::ExtensionEntry> entries;
  for (config::ExtensionEntry entry : section.chain) {
    if (s.deleted.count(entry.name) != 0) continue;
    entries.push_back(std::move(entry));
  }
  // An extension added by control replaces a configured one of that name.
  for (const config::ExtensionEntry& entry : s.added) {
    auto same = std::find_if(entries.begin(), entries.end(),
                             [&](const auto& e) { return e.name == entry.name; });
    if (same != entries.end()) {
      *same = entry;
    } else {
      entries.push_back(entry);
    }
  }
  auto plan = std::make_shared<ChainPlan>();
  std::map<std::string, std::shared_ptr<LoadedExtension>> next;
  std::vector<std::string> order;
  for (config::ExtensionEntry& entry : entries) {
    if (auto g = s.groups.find(entry.name); g != s.groups.end()) entry.group = g->second;
    std::shared_ptr<LoadedExtension> extension;
    auto reuse = [&](std::shared_ptr<LoadedExtension> candidate) {
      if (candidate && candidate->entry().file == entry.file &&
          candidate->entry().parameters == entry.parameters) {
        extension = std::move(candidate);
      }
    };
    reuse(s.Find(entry.name));
    if (!extension) {
      if (auto it = s.preloaded.find(entry.name); it != s.preloaded.end()) reuse(it->second);
    }
    if (extension) {
      // A changed group or started value in the configuration applies now;
      // an unchanged one keeps what control commands set.
      const config::ExtensionEntry& before = extension->entry();
      if (before.group != entry.group) extension->set_group(entry.group);
      if (before.started != entry.started) {
        const std::string problem = entry.started ? extension->Start() : extension->Stop();
        if (!problem.empty()) {
          errors.push_back("extension " + extension->path() + ": " +
                           (entry.started ? "start" : "stop") + " failed: " + problem);
        }
      }
      extension->set_entry(entry);
    } else {
      try {
        extension = LoadedExtension::Load(s.load_policy, entry, &s.api, s.CountersFor(entry.name));
      } catch (const std::exception& e) {
        errors.push_back(e.what());
        continue;
      }
    }
    next[entry.name] = extension;
    order.push_back(entry.name);
    plan->links.push_back(std::move(extension));
  }
  s.preloaded.clear();
  s.loaded = std::move(next);  // dropped ones live on in the old chains until reclaimed
  s.order = std::move(order);
  plan->end_verdict = ToVerdict(section.end_verdict);
  plan->timeout_verdict = ToVerdict(section.timeout_verdict);
  plan->overflow_verdict = ToVerdict(section.overflow_verdict);
  plan->timeout_ns = std::uint64_t{section.pending_timeout_ms} * 1'000'000;
  if (struct if_nameindex* names = ::if_nameindex()) {
    for (struct if_nameindex* n = names; n->if_index != 0; ++n) {
      if (n->if_index > 4096) continue;
      if (plan->interface_names.size() <= n->if_index) plan->interface_names.resize(n->if_index + 1);
      std::snprintf(plan->interface_names[n->if_index].data(), 16, "%s", n->if_name);
    }
    ::if_freenameindex(names);
  }
  return plan;
}

std::unique_ptr<decider::Decider> ExtensionHost::MakeChain(
    const std::shared_ptr<const ChainPlan>& plan, std::size_t worker) {
  if (!plan || plan->links.empty()) return nullptr;
  Impl& s = *impl_;
  if (worker >= s.options.worker_slots) throw std::runtime_error("extension host: no worker slot " + std::to_string(worker));
  std::lock_guard lock(s.mutex);
  WorkerState* state = s.Worker(worker);
  if (state == nullptr) {
    // Made whole before it is published: the worker reads it without a lock
    // from then on (pending_slots x max_packet_bytes, once per worker).
    auto fresh = std::make_unique<WorkerState>();
    fresh->scratch = std::make_unique<std::uint8_t[]>(s.startup.max_packet_bytes);
    fresh->table = std::make_unique<PendingTable>(s.startup.pending_slots,
                                                  s.startup.max_packet_bytes,
                                                  static_cast<std::uint16_t>(worker));
    state = fresh.get();
    s.storage[worker] = std::move(fresh);
    s.workers[worker].store(state, std::memory_order_release);
  }
  s.graveyard.Sweep();
  return std::make_unique<ChainDecider>(plan, worker, state->table.get(), state->scratch.get(),
                                        s.startup.max_packet_bytes, &s.graveyard);
}

std::size_t ExtensionHost::Poll(std::size_t worker, std::uint64_t now_ns,
                                decider::ReadyVerdicts& ready) noexcept {
  PublishStagedJobs();  // before any verdict is waited for
  WorkerState* state = impl_->Worker(worker);
  if (state == nullptr || !state->table || state->table->pending() == 0) return 0;
  const std::size_t delivered = state->table->Poll(now_ns, ready, false);
  PublishStagedJobs();  // jobs of extensions a NEXT resumed
  return delivered;
}

std::size_t ExtensionHost::pending(std::size_t worker) const noexcept {
  WorkerState* state = impl_->Worker(worker);
  return state == nullptr || !state->table ? 0 : state->table->pending();
}

queueio::Verdict ExtensionHost::Abandon(std::size_t worker, std::uint32_t /*id*/) noexcept {
  WorkerState* state = impl_->Worker(worker);
  if (state == nullptr || !state->table) return queueio::Verdict::Accept();
  return state->table->AbandonLast();
}

bool ExtensionHost::Wait(std::size_t worker, int fd, int timeout_ms,
                         std::uint64_t now_ns) noexcept {
  PublishStagedJobs();  // the verdicts waited for may depend on them
  WorkerState* state = impl_->Worker(worker);
  if (state == nullptr || !state->table || fd < 0) return false;
  return state->table->Wait(fd, timeout_ms, now_ns);
}

std::size_t ExtensionHost::retired_chains() {
  impl_->graveyard.Sweep();
  return impl_->graveyard.size();
}

ExtensionHost::WaitStats ExtensionHost::wait_stats(std::size_t worker) const noexcept {
  WorkerState* state = impl_->Worker(worker);
  if (state == nullptr || !state->table) return {};
  return WaitStats{state->table->waits(), state->table->wakeups(), state->table->wait_timeouts()};
}

std::size_t ExtensionHost::ExpireAll(std::size_t worker, decider::ReadyVerdicts& ready) noexcept {
  PublishStagedJobs();
  WorkerState* state = impl_->Worker(worker);
  if (state == nullptr || !state->table) return 0;
  return state->table->Poll(std::numeric_limits<std::uint64_t>::max(), ready, true);
}

std::shared_ptr<prometheus::Collectable> MakeExtensionCollector(
    std::function<std::vector<std::shared_ptr<ExtensionCounters>>()> snapshot);

std::shared_ptr<prometheus::Collectable> ExtensionHost::Collector() {
  Impl* impl = impl_.get();
  return MakeExtensionCollector([impl] {
    std::lock_guard lock(impl->mutex);
    std::vector<std::shared_ptr<ExtensionCounters>> all;
    for (const auto& [name, counters] : impl->counters) all.push_back(counters);
    return all;
  });
}

// ---- Control commands ----

namespace {
std::uint64_t Sum(const ExtensionCounters& counters, metrics::RelaxedCounter ExtensionWorkerCounters::*field) {
  std::uint64_t total = 0;
  for (const auto& w : counters.workers) total += (w.*field).value();
  return total;
}
CommandResult Error(std::string text) { return CommandResult{false, std::move(text)}; }
}  // namespace

CommandResult ExtensionHost::List() const {
  std::lock_guard lock(impl_->mutex);
  std::string text;
  char line[512];
  for (const std::string& name : impl_->order) {
    const auto extension = impl_->Find(name);
    if (!extension) continue;
    const auto& api = extension->api();
    std::snprintf(line, sizeof line, "%s %u.%u.%u %s group=0x%x calls=%llu%s file=%s params=\"%s\"\n",
                  name.c_str(), api.extension_version >> 16, (api.extension_version >> 8) & 0xff,
                  api.extension_version & 0xff,
                  extension->started() ? "started" : "stopped", extension->group(),
                  static_cast<unsigned long long>(Sum(extension->counters(), &ExtensionWorkerCounters::calls)),
                  extension->may_pend() ? " async" : "", extension->path().c_str(),
                  extension->entry().parameters.c_str());
    text += line;
  }
  if (text.empty()) text = "no extensions loaded\n";
  return CommandResult{true, text};
}

CommandResult ExtensionHost::Add(const std::string& name, const std::string& parameters) {
  if (std::string problem = config::ExtensionNameProblem(name); !problem.empty()) {
    return Error("expected " + problem + ", found \"" + name + "\"");
  }
  if (std::string problem = config::ParametersProblem(parameters); !problem.empty()) {
    return Error("extension " + name + ": parameters: expected " + problem);
  }
  std::lock_guard lock(impl_->mutex);
  Impl& s = *impl_;
  if (s.loaded.count(name) != 0) return Error("extension " + name + " is already in the chain; del it first");
  config::ExtensionEntry entry;
  entry.name = name;
  entry.parameters = parameters;
  entry.started = false;  // as ipqext: add, group, then start
  try {
    s.preloaded[name] = LoadedExtension::Load(s.load_policy, entry, &s.api, s.CountersFor(name));
  } catch (const std::exception& e) {
    return Error(e.what());
  }
  s.deleted.erase(name);
  std::erase_if(s.added, [&](const auto& e) { return e.name == name; });
  s.added.push_back(entry);
  return CommandResult{true, "added " + name + " (stopped; `ext start " + name + "` to run it)"};
}

CommandResult ExtensionHost::Del(const std::string& name) {
  std::lock_guard lock(impl_->mutex);
  Impl& s = *impl_;
  if (s.loaded.count(name) == 0) return Error("no extension " + name + " in the chain");
  std::erase_if(s.added, [&](const auto& e) { return e.name == name; });
  s.deleted.insert(name);
  s.groups.erase(name);
  return CommandResult{true, "deleted " + name + " (unloaded once every worker moved on)"};
}

CommandResult ExtensionHost::Group(const std::string& name, std::uint32_t mask) {
  std::lock_guard lock(impl_->mutex);
  const auto extension = impl_->Find(name);
  if (!extension) return Error("no extension " + name + " in the chain");
  extension->set_group(mask);
  impl_->groups[name] = mask;
  char text[64];
  std::snprintf(text, sizeof text, "group 0x%x", mask);
  return CommandResult{true, name + ": " + text};
}

CommandResult ExtensionHost::Start(const std::string& name) {
  std::lock_guard lock(impl_->mutex);
  const auto extension = impl_->Find(name);
  if (!extension) return Error("no extension " + name + " in the chain");
  if (std::string problem = extension->Start(); !problem.empty()) return Error(name + ": start failed: " + problem);
  return CommandResult{true, name + " started"};
}

CommandResult ExtensionHost::Stop(const std::string& name) {
  std::lock_guard lock(impl_->mutex);
  const auto extension = impl_->Find(name);
  if (!extension) return Error("no extension " + name + " in the chain");
  if (std::string problem = extension->Stop(); !problem.empty()) return Error(name + ": stop failed: " + problem);
  return CommandResult{true, name + " stopped"};
}

CommandResult ExtensionHost::Reset(const std::string& name) {
  std::lock_guard lock(impl_->mutex);
  const auto extension = impl_->Find(name);
  if (!extension) return Error("no extension " + name + " in the chain");
  if (std::string problem = extension->Reset(); !problem.empty()) return Error(name + ": reset failed: " + problem);
  return CommandResult{true, name + " reset"};
}

CommandResult ExtensionHost::Info(const std::string& name) const {
  std::lock_guard lock(impl_->mutex);
  const auto extension = impl_->Find(name);
  if (!extension) return Error("no extension " + name + " in the chain");
  return CommandResult{true, extension->Info()};
}

CommandResult ExtensionHost::Help(const std::string& name) const {
  if (std::string problem = config::ExtensionNameProblem(name); !problem.empty()) {
    return Error("expected " + problem + ", found \"" + name + "\"");
  }
  std::lock_guard lock(impl_->mutex);
  try {
    return CommandResult{true, ExtensionHelp(impl_->load_policy, name + ".so")};
  } catch (const std::exception& e) {
    return Error(e.what());
  }
}

}  // namespace verdictd::extensions
