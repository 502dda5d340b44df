#include "verdictd/service/service.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace verdictd::service {
namespace {

queueio::CopyMode ToCopyMode(config::CopyMode mode) {
  return mode == config::CopyMode::kMeta ? queueio::CopyMode::kMeta : queueio::CopyMode::kPacket;
}

// NFQNL_MSG_CONFIG setting the queue's maximum length to 0. With the
// fail-open flag the kernel then accepts every new packet instead of queueing
// it, while packets already queued still wait for (and take) our verdicts:
// this is how a stopping worker drains without a window in which the kernel
// would drop packets at unbind.
std::vector<std::uint8_t> ZeroMaxLengthMessage(std::uint16_t queue_num) {
  std::vector<std::uint8_t> buffer(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* header =
      nfq_nlmsg_put(reinterpret_cast<char*>(buffer.data()), NFQNL_MSG_CONFIG, queue_num);
  nfq_nlmsg_cfg_put_qmaxlen(header, 0);
  buffer.resize(header->nlmsg_len);
  return buffer;
}

}  // namespace

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) {
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    for (int cpu = 0; cpu < std::max(1L, online); ++cpu) cpus.push_back(cpu);
  }
  return cpus;
}

std::vector<QueuePlan> PlanQueues(const config::Config& config, std::span<const int> cpus) {
  if (cpus.empty()) throw std::runtime_error("no CPU available to run workers on");
  std::vector<QueuePlan> plan;
  for (std::size_t r = 0; r < config.queues.size(); ++r) {
    const config::QueueRange& range = config.queues[r];
    std::size_t count = range.count;
    if (count == config::QueueRange::kOnePerCpu) {
      count = range.cpus.empty() ? cpus.size() : range.cpus.size();
    }
    const std::string where = "queues[" + std::to_string(r) + "] (queues " +
                              std::to_string(range.first) + ".." +
                              std::to_string(range.first + count - 1) + ")";
    if (range.first + count - 1 > 65535) {
      throw std::runtime_error(where + ": queue numbers end at 65535; lower first or count");
    }
    if (!range.cpus.empty() && range.cpus.size() != count) {
      throw std::runtime_error(where + ": " + std::to_string(range.cpus.size()) +
                               " CPUs listed for " + std::to_string(count) +
                               " queues; list one CPU per queue or none");
    }
    for (std::size_t i = 0; i < count; ++i) {
      QueuePlan entry;
      queueio::QueueOptions& q = entry.queue;
      q.queue_num = static_cast<std::uint16_t>(range.first + i);
      q.copy_mode = ToCopyMode(range.copy_mode);
      q.copy_range = range.copy_range;
      q.max_queue_length = range.max_length;
      q.fail_open = range.fail_open;
      q.gso = range.gso;
      q.conntrack = range.conntrack;
      q.uid_gid = range.uid_gid;
      q.receive_buffer_bytes = range.receive_buffer_bytes;
      q.batch_size = range.receive_batch;
      entry.cpu = range.cpus.empty() ? cpus[i % cpus.size()] : range.cpus[i];
      for (const QueuePlan& other : plan) {
        if (other.queue.queue_num == q.queue_num) {
          throw std::runtime_error(where + ": queue " + std::to_string(q.queue_num) +
                                   " is already in another range; ranges must not overlap");
        }
      }
      plan.push_back(entry);
    }
  }
  if (plan.empty()) throw std::runtime_error("no queue configured; give at least one queue");
  return plan;
}

WorkerOptions MakeWorkerOptions(const config::VerdictSection& verdict, std::size_t index,
                                std::uint16_t queue_num) {
  WorkerOptions options;
  options.index = index;
  options.queue_num = queue_num;
  options.batch_size = verdict.batch_size;
  options.flush_interval_us = verdict.flush_interval_us;
  options.busy_poll_us = verdict.busy_poll_us;
  // Room for batch_size single verdicts with mark and connmark (~64 bytes each).
  options.send_buffer_bytes = std::max<std::size_t>(64 * 1024, verdict.batch_size * 128);
  return options;
}

std::string DescribeQueue(const QueuePlan& plan, const queueio::BindReport& report) {
  const queueio::QueueOptions& q = plan.queue;
  std::string flags;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!flags.empty()) flags += ',';
    flags += name;
  };
  add(q.fail_open, "fail-open");
  add(q.gso, "gso");
  add(q.conntrack, "conntrack");
  add(q.uid_gid, "uid-gid");
  if (flags.empty()) flags = "none";
  std::string line = "queue " + std::to_string(q.queue_num) + ": cpu " +
                     (plan.cpu < 0 ? std::string("any") : std::to_string(plan.cpu)) +
                     ", copy " + (q.copy_mode == queueio::CopyMode::kMeta ? "meta" : "packet") +
                     "/" + std::to_string(q.copy_range) + ", maxlen " +
                     std::to_string(q.max_queue_length) + ", flags " + flags + ", rcvbuf " +
                     std::to_string(report.receive_buffer_bytes) + " bytes" +
                     (report.receive_buffer_forced ? " (forced)" : "") + " of " +
                     std::to_string(q.receive_buffer_bytes) + " asked";
  if (!report.notes.empty()) line += " (" + report.notes + ")";
  return line;
}

std::string SummarizeCounters(std::uint16_t queue_num, const metrics::WorkerCounters& c) {
  std::string line = "queue " + std::to_string(queue_num) + ": packets " +
                     std::to_string(c.packets.value()) + ", bytes " +
                     std::to_string(c.bytes.value());
  for (std::size_t k = 0; k < metrics::kVerdictLabels.size(); ++k) {
    if (c.verdicts[k].value() == 0) continue;
    line += ", ";
    line += metrics::kVerdictLabels[k];
    line += " " + std::to_string(c.verdicts[k].value());
  }
  line += ", gso_packets " + std::to_string(c.gso_packets.value()) + ", max_packet_length " +
          std::to_string(c.max_packet_length.value()) + ", verdict_sends " +
          std::to_string(c.verdict_sends.value()) + ", batch_messages " +
          std::to_string(c.batch_messages.value()) + ", malformed " +
          std::to_string(c.malformed.value()) + ", kernel_errors " +
          std::to_string(c.kernel_errors.value()) + ", enobufs " +
          std::to_string(c.enobufs.value()) + ", send_errors " +
          std::to_string(c.send_errors.value());
  return line;
}

Service::Service(std::vector<QueuePlan> plan, const config::VerdictSection& verdict)
    : plan_(std::move(plan)),
      verdict_(verdict),
      counters_(new metrics::WorkerCounters[plan_.size()]),
      failures_(plan_.size()) {}

Service::~Service() { Stop(); }

void Service::Open() {
  sockets_.clear();
  for (const QueuePlan& entry : plan_) {
    sockets_.push_back(queueio::QueueSocket::Open(entry.queue));
    spdlog::info("{}", DescribeQueue(entry, sockets_.back()->bind_report()));
  }
}

void Service::Start(PolicyExchange& exchange, std::function<void()> on_fatal) {
  if (sockets_.size() != plan_.size()) throw std::logic_error("Service::Start before Open");
  on_fatal_ = std::move(on_fatal);
  workers_.clear();
  drain_messages_.clear();
  drain_messages_.reserve(plan_.size());  // the hooks keep references into it
  for (std::size_t i = 0; i < plan_.size(); ++i) {
    const std::uint16_t queue_num = plan_[i].queue.queue_num;
    queueio::QueueSocket& socket = *sockets_[i];
    WorkerOptions options = MakeWorkerOptions(verdict_, i, queue_num);
    options.receive_batch = plan_[i].queue.batch_size;
    auto worker = std::make_unique<Worker>(options, socket, socket, exchange, counters_[i]);
    if (plan_[i].queue.fail_open) {
      drain_messages_.push_back(ZeroMaxLengthMessage(queue_num));
      const std::vector<std::uint8_t>& message = drain_messages_.back();
      worker->set_drain_hook([&socket, &message] { socket.Send(message); });
    }
    workers_.push_back(std::move(worker));
  }
  for (std::size_t i = 0; i < plan_.size(); ++i) {
    threads_.emplace_back([this, i] { RunWorker(i); });
    const std::string name = "verdictd-q" + std::to_string(plan_[i].queue.queue_num);
    pthread_setname_np(threads_.back().native_handle(), name.substr(0, 15).c_str());
    if (plan_[i].cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(plan_[i].cpu, &set);
      const int rc = pthread_setaffinity_np(threads_.back().native_handle(), sizeof set, &set);
      if (rc != 0) {
        Stop();
        throw std::runtime_error("cannot pin the worker of queue " +
                                 std::to_string(plan_[i].queue.queue_num) + " to CPU " +
                                 std::to_string(plan_[i].cpu) + ": " + std::strerror(rc) +
                                 "; list CPUs this process may use (--cpus)");
      }
    }
  }
}

void Service::RunWorker(std::size_t index) noexcept {
  metrics::WorkerCounters& counters = counters_[index];
  counters.tid.store(static_cast<int>(gettid()), std::memory_order_relaxed);
  counters.cpu.store(plan_[index].cpu, std::memory_order_relaxed);
  counters.up.store(true, std::memory_order_release);
  const WorkerExit exit = workers_[index]->Run();
  counters.up.store(false, std::memory_order_release);
  if (exit == WorkerExit::kFatalError) {
    try {
      failures_[index] = "queue " + std::to_string(plan_[index].queue.queue_num) + ": " +
                         workers_[index]->fatal_reason();
    } catch (...) {
    }
    failed_.store(true, std::memory_order_release);
    if (!fatal_reported_.exchange(true) && on_fatal_) on_fatal_();
  }
}

void Service::Stop() noexcept {
  for (auto& worker : workers_) worker->RequestStop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
  // Every worker drained and flushed: nothing is left queued, unbinding drops nothing.
  for (auto& socket : sockets_) socket->Unbind();
}

std::string Service::failure() const {
  std::string text;
  for (const std::string& f : failures_) {
    if (f.empty()) continue;
    if (!text.empty()) text += "; ";
    text += f;
  }
  return text;
}

}  // namespace verdictd::service
