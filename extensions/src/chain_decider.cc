#include "chain_decider.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "verdictd/queueio/packet.h"

namespace verdictd::extensions {
namespace {

std::uint64_t Now() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

void CopyName(const ChainPlan& plan, std::uint32_t index, char (&out)[16]) noexcept {
  if (index != 0 && index < plan.interface_names.size()) {
    std::memcpy(out, plan.interface_names[index].data(), sizeof out);
  } else {
    out[0] = '\0';
  }
}

}  // namespace

ChainDecider::ChainDecider(std::shared_ptr<const ChainPlan> plan, std::size_t worker,
                           PendingTable* table, std::uint8_t* scratch, std::uint32_t max_edit)
    : plan_(std::move(plan)), table_(table), scratch_(scratch), max_edit_(max_edit) {
  bool may_pend = false;
  links_.reserve(plan_->links.size());
  try {
    for (const auto& extension : plan_->links) {
      Link link;
      link.extension = extension.get();
      link.counters = &extension->counters().workers.at(worker);
      link.handle = std::make_unique<WorkerHandle>();
      link.handle->counters = link.counters;
      link.may_pend = extension->may_pend() && table_ != nullptr;
      char error[512] = {};
      link.instance = extension->api().instantiate(
          extension->state(), reinterpret_cast<verdictd_worker_t*>(link.handle.get()),
          static_cast<std::uint32_t>(worker), error, sizeof error);
      if (link.instance == nullptr) {
        error[sizeof error - 1] = '\0';
        throw std::runtime_error("extension " + extension->path() + ": instantiate for worker " +
                                 std::to_string(worker) + " failed: " +
                                 (error[0] != '\0' ? error : "(no reason given)"));
      }
      may_pend = may_pend || link.may_pend;
      links_.push_back(std::move(link));
    }
  } catch (...) {
    for (Link& link : links_) link.extension->api().destroy(link.instance);
    throw;
  }
  set_may_defer(may_pend);
}

ChainDecider::~ChainDecider() {
  for (auto it = links_.rbegin(); it != links_.rend(); ++it) {
    it->extension->api().destroy(it->instance);
  }
}

queueio::Verdict ChainDecider::Decide(const queueio::PacketView& packet,
                                      std::uint64_t now_ns) noexcept {
  // Only called when no extension may pend (may_defer() false).
  return Run(packet, now_ns).verdict;
}

decider::Decision ChainDecider::DecideOrDefer(const queueio::PacketView& packet,
                                              std::uint64_t now_ns) noexcept {
  return Run(packet, now_ns);
}

decider::Decision ChainDecider::Run(const queueio::PacketView& view, std::uint64_t now_ns) noexcept {
  PacketContext context;
  verdictd_packet_t& p = context.packet;
  p.id = view.id;
  p.queue = view.queue_num;
  p.hw_protocol = view.hw_protocol;
  p.hook = view.hook;
  p.family = view.family;
  p.l3 = view.payload.empty() ? 0 : static_cast<std::uint8_t>(view.payload[0] >> 4);
  if (p.l3 != 4 && p.l3 != 6) p.l3 = 0;
  p.flags = (view.has_mark ? VERDICTD_PACKET_HAS_MARK : 0u) |
            (view.has_timestamp ? VERDICTD_PACKET_HAS_TIMESTAMP : 0u) |
            ((view.skb_info & queueio::kSkbChecksumNotReady) != 0
                 ? VERDICTD_PACKET_CHECKSUM_NOT_READY
                 : 0u) |
            (view.is_gso() ? VERDICTD_PACKET_GSO : 0u) |
            (view.truncated() ? VERDICTD_PACKET_TRUNCATED : 0u);
  p.mark = view.mark;
  p.indev = view.indev;
  p.outdev = view.outdev;
  CopyName(*plan_, view.indev, p.indev_name);
  CopyName(*plan_, view.outdev, p.outdev_name);
  p.timestamp_ns = view.timestamp_ns;
  p.reserved0 = 0;
  p.hw_addrlen = 0;  // the parser does not keep NFQA_HWADDR yet
  std::memset(p.hw_addr, 0, sizeof p.hw_addr);
  p.token = 0;
  p.data = view.payload.data();
  p.data_len = static_cast<std::uint32_t>(view.payload.size());
  p.original_len = view.original_length;
  context.scratch = scratch_;
  context.capacity = max_edit_;

  ResultContext result;
  result.end_verdict = plan_->end_verdict;
  result.mark = view.mark;
  result.checksum_not_ready = (p.flags & VERDICTD_PACKET_CHECKSUM_NOT_READY) != 0;
  result.gso_or_truncated = (p.flags & (VERDICTD_PACKET_GSO | VERDICTD_PACKET_TRUNCATED)) != 0;

  for (Link& link : links_) {
    if (!link.extension->started.load(std::memory_order_relaxed)) continue;
    const std::uint32_t group = link.extension->group.load(std::memory_order_relaxed);
    if (group != 0 && (result.mark & group) == 0) continue;
    ExtensionWorkerCounters& counters = *link.counters;
    PacketContext* current = &context;
    int slot = -1;
    if (link.may_pend) {
      slot = table_->Reserve();
      if (slot < 0) {
        counters.overflows.Add();
        queueio::Verdict verdict = plan_->overflow_verdict;
        if (result.mark_changed) {
          verdict.set_mark = true;
          verdict.mark = result.mark;
        }
        return {verdict, false};
      }
      // The receive buffer is reused by the next receive: the extension
      // works on a copy that lives until the verdict.
      PacketContext& copy = table_->context(slot);
      const std::uint32_t n = std::min(context.packet.data_len, copy.capacity);
      std::memcpy(copy.scratch, context.packet.data, n);
      copy.packet = context.packet;
      copy.packet.data = copy.scratch;
      copy.packet.data_len = n;
      if (n < context.packet.data_len) copy.packet.flags |= VERDICTD_PACKET_TRUNCATED;
      copy.packet.token = table_->Token(slot);
      copy.edited = true;  // edits happen in the slot itself
      current = &copy;
      table_->Arm(slot);
    }
    verdictd_verdict_t out{};
    const std::uint64_t calls = counters.calls.value();
    counters.calls.Add();
    verdictd_result_t r;
    if (calls % kTimingSample == 0) {
      const std::uint64_t start = Now();
      r = link.extension->api().process(link.instance, &current->packet, &out);
      counters.process_time.Observe(Now() - start);
    } else {
      r = link.extension->api().process(link.instance, &current->packet, &out);
    }
    if (r < VERDICTD_ACCEPT || r > VERDICTD_PENDING) {
      // Not a result of this ABI: counted, and the next extension decides.
      counters.errors.Add();
      if (slot >= 0) table_->Release(slot);
      continue;
    }
    counters.results[static_cast<std::size_t>(r)].Add();
    if (r == VERDICTD_PENDING) {
      if (slot < 0) {
        counters.errors.Add();  // PENDING without VERDICTD_EXT_MAY_PEND: passed on
        continue;
      }
      ResultContext pending = result;
      pending.gso_or_truncated =
          (current->packet.flags & (VERDICTD_PACKET_GSO | VERDICTD_PACKET_TRUNCATED)) != 0;
      table_->Begin(slot, view.id, (now_ns != 0 ? now_ns : Now()) + plan_->timeout_ns, pending, plan_->timeout_verdict,
                    plan_->overflow_verdict, link.counters);
      return {queueio::Verdict{}, true};
    }
    if (r == VERDICTD_NEXT) {
      if (slot >= 0) {
        table_->Release(slot);
      }
      if ((out.flags & VERDICTD_VERDICT_SET_MARK) != 0) {
        result.mark = out.mark;
        result.mark_changed = true;
      }
      continue;
    }
    bool error = false;
    if (r == VERDICTD_ALTERED) {
      result.gso_or_truncated =
          (current->packet.flags & (VERDICTD_PACKET_GSO | VERDICTD_PACKET_TRUNCATED)) != 0;
    }
    // An edited packet's bytes are in the scratch or the slot; the worker
    // adds the verdict (the batcher copies the replacement) before the next
    // packet can reuse either.
    const queueio::Verdict verdict =
        MakeVerdict(r, out, result, const_cast<std::uint8_t*>(current->packet.data),
                    current->packet.data_len, current->edited, error);
    if (error) counters.errors.Add();
    if (slot >= 0) table_->Release(slot);
    return {verdict, false};
  }
  queueio::Verdict verdict = plan_->end_verdict;
  if (result.mark_changed) {
    verdict.set_mark = true;
    verdict.mark = result.mark;
  }
  return {verdict, false};
}

}  // namespace verdictd::extensions
