#include "chain_decider.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>

#include "verdictd/base/clock.h"
#include "verdictd/queueio/packet.h"

namespace verdictd::extensions {
namespace {

constexpr std::array<char, 16> kNoName{};

// verdictd_packet_t.l3 from the IP version nibble: 4, 6 or 0 (unknown).
constexpr std::uint8_t kL3OfVersion[16] = {0, 0, 0, 0, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0};

static_assert(VERDICTD_PACKET_HAS_MARK == 1u << 0 && VERDICTD_PACKET_HAS_TIMESTAMP == 1u << 1);
static_assert(VERDICTD_PACKET_CHECKSUM_NOT_READY == queueio::kSkbChecksumNotReady << 2 &&
              VERDICTD_PACKET_GSO == queueio::kSkbGso << 2);
static_assert(VERDICTD_PACKET_TRUNCATED == 1u << 4);

#if defined(__LP64__)
// The packet view is ABI: extensions built against any 1.x header read these
// offsets (1.1 only started to fill hw_addr, in place).
static_assert(offsetof(verdictd_packet_t, hw_addrlen) == 60);
static_assert(offsetof(verdictd_packet_t, hw_addr) == 61);
static_assert(offsetof(verdictd_packet_t, timestamp_ns) == 72);
static_assert(offsetof(verdictd_packet_t, token) == 96);
static_assert(sizeof(verdictd_packet_t) == 104);
#endif

}  // namespace

ChainLinks::ChainLinks(std::shared_ptr<const ChainPlan> plan, std::size_t worker,
                       PendingTable* table, std::uint8_t* scratch, std::uint32_t max_edit)
    : plan_(std::move(plan)), table_(table), scratch_(scratch), max_edit_(max_edit) {
  links_.reserve(plan_->links.size());
  try {
    for (const auto& extension : plan_->links) {
      Link link;
      link.extension = extension.get();
      link.gate = &extension->gate();
      link.process = extension->api().process;
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
      may_pend_ = may_pend_ || link.may_pend;
      links_.push_back(std::move(link));
    }
  } catch (...) {
    for (Link& link : links_) link.extension->api().destroy(link.instance);
    throw;
  }
  link_data_ = links_.data();
  link_count_ = links_.size();
  end_verdict_ = plan_->end_verdict;
  names_ = plan_->interface_names.data();
  name_count_ = plan_->interface_names.size();
  // Set once: what edit() works with, and the fields the host never fills.
  std::memset(&context_.packet, 0, sizeof context_.packet);
  context_.scratch = scratch_;
  context_.capacity = max_edit_;
}

ChainLinks::~ChainLinks() {
  for (auto it = links_.rbegin(); it != links_.rend(); ++it) {
    it->extension->api().destroy(it->instance);
  }
}

// Inlined into Run: a call of its own cost more than a no-op extension's.
[[gnu::always_inline]] inline void ChainLinks::Fill(const queueio::PacketView& view) noexcept {
  verdictd_packet_t& p = context_.packet;
  p.id = view.id;
  p.queue = view.queue_num;
  p.hw_protocol = view.hw_protocol;
  p.hook = view.hook;
  p.family = view.family;
  p.l3 = view.payload.empty() ? 0 : kL3OfVersion[view.payload[0] >> 4];
  // Shifts, not branches: the ABI's flag bits sit where these put them.
  p.flags = static_cast<std::uint32_t>(view.has_mark) |
            static_cast<std::uint32_t>(view.has_timestamp) << 1 |
            (view.skb_info & (queueio::kSkbChecksumNotReady | queueio::kSkbGso)) << 2 |
            static_cast<std::uint32_t>(view.truncated()) << 4;
  p.mark = view.mark;
  // The names change only with the interfaces (the view is the host's: an
  // extension changes it only through edit()).
  if (view.indev != p.indev) {
    p.indev = view.indev;
    const std::array<char, 16>& in = view.indev < name_count_ ? names_[view.indev] : kNoName;
    std::memcpy(p.indev_name, in.data(), sizeof p.indev_name);
  }
  if (view.outdev != p.outdev) {
    p.outdev = view.outdev;
    const std::array<char, 16>& out = view.outdev < name_count_ ? names_[view.outdev] : kNoName;
    std::memcpy(p.outdev_name, out.data(), sizeof p.outdev_name);
  }
  // NFQA_HWADDR (ABI 1.1): at most 8 bytes, the rest zero.
  if (view.hw_addr.empty()) {
    if (p.hw_addrlen != 0) {
      p.hw_addrlen = 0;
      std::memset(p.hw_addr, 0, sizeof p.hw_addr);
    }
  } else {
    const std::size_t hw_len = std::min<std::size_t>(view.hw_addr.size(), sizeof p.hw_addr);
    p.hw_addrlen = static_cast<std::uint8_t>(hw_len);
    std::uint8_t hw[sizeof p.hw_addr] = {};
    for (std::size_t i = 0; i < hw_len; ++i) hw[i] = view.hw_addr[i];
    std::memcpy(p.hw_addr, hw, sizeof hw);
  }
  p.timestamp_ns = view.timestamp_ns;
  p.data = view.payload.data();
  p.data_len = static_cast<std::uint32_t>(view.payload.size());
  p.original_len = view.original_length;
  p.token = 0;
  context_.edited = false;
}

// One call of process(), counted; one call in kTimingSample is timed.
[[gnu::always_inline]] inline verdictd_result_t ChainLinks::Call(const Link& link,
                                                                 ExtensionWorkerCounters& counters,
                                                                 verdictd_packet_t& packet,
                                                                 verdictd_verdict_t& said) noexcept {
  const std::uint64_t calls = counters.calls.value();
  counters.calls.Add();
  if (calls % kTimingSample != 0) return link.process(link.instance, &packet, &said);
  const std::uint64_t start = base::MonotonicNanos();
  const verdictd_result_t r = link.process(link.instance, &packet, &said);
  counters.process_time.Observe(base::MonotonicNanos() - start);
  return r;
}

bool ChainLinks::Run(const queueio::PacketView& view, std::uint64_t now_ns,
                     queueio::Verdict& out) noexcept {
  // The links that will not run are passed over before the view is filled.
  const std::size_t first = NextRunning(0, view.mark);
  if (first == link_count_) {
    out = end_verdict_;
    return false;
  }
  Fill(view);
  now_ns_ = now_ns;
  // result.end_verdict is only read for a pending packet (set at Begin).
  ResultContext result;
  result.mark = view.mark;
  const std::uint32_t flags = context_.packet.flags;
  result.checksum_not_ready = (flags & VERDICTD_PACKET_CHECKSUM_NOT_READY) != 0;
  result.gso_or_truncated = (flags & (VERDICTD_PACKET_GSO | VERDICTD_PACKET_TRUNCATED)) != 0;
  return may_pend_ ? Loop<true>(first, result, view.id, out)
                   : Loop<false>(first, result, view.id, out);
}

decider::Decision ChainLinks::Resume(const PacketContext& from, std::uint32_t next_link,
                                     const ResultContext& result_in, std::uint32_t id) noexcept {
  // The packet's bytes stay in the pending slot until the caller frees it,
  // after this returns: later extensions read them there; an edit() copies
  // them into the inline scratch, a later pending extension into its slot.
  context_.packet = from.packet;
  context_.packet.token = 0;
  context_.edited = false;
  now_ns_ = 0;  // a completion: its own time
  ResultContext result = result_in;
  decider::Decision decision;
  // Only a chain with an extension that may pend has packets to resume.
  decision.deferred =
      Loop<true>(NextRunning(next_link, result.mark), result, id, decision.verdict);
  return decision;
}

template <bool kMayPend>
bool ChainLinks::Loop(std::size_t first, ResultContext& result, std::uint32_t id,
                      queueio::Verdict& out) noexcept {
  PacketContext& context = context_;
  for (std::size_t index = first; index < link_count_;
       index = NextRunning(index + 1, result.mark)) {
    Link& link = link_data_[index];
    ExtensionWorkerCounters& counters = *link.counters;
    PacketContext* current = &context;
    int slot = -1;  // stays -1 without kMayPend: the slot code below folds away
    if (kMayPend && link.may_pend) {
      slot = table_->Reserve();
      if (slot < 0) {
        counters.overflows.Add();
        out = plan_->overflow_verdict;
        if (result.mark_changed) {
          out.set_mark = true;
          out.mark = result.mark;
        }
        return false;
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
      copy.edited = true;  // edits happen in the slot itself
      current = &copy;
      copy.packet.token = table_->Arm(slot);
    }
    verdictd_verdict_t said{};
    const verdictd_result_t r = Call(link, counters, current->packet, said);
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
      pending.end_verdict = PlainVerdict::Of(end_verdict_);
      pending.gso_or_truncated =
          (current->packet.flags & (VERDICTD_PACKET_GSO | VERDICTD_PACKET_TRUNCATED)) != 0;
      // A NEXT from the completion resumes the chain after this link.
      const bool more = index + 1 < link_count_;
      const std::uint64_t now = now_ns_ != 0 ? now_ns_ : base::MonotonicNanos();
      table_->Begin(slot, id, now + plan_->timeout_ns, pending, plan_->timeout_verdict,
                    plan_->overflow_verdict, link.counters, more ? this : nullptr,
                    static_cast<std::uint32_t>(index + 1));
      return true;
    }
    if (r == VERDICTD_NEXT) {
      if (slot >= 0) {
        table_->Release(slot);
      }
      if ((said.flags & VERDICTD_VERDICT_SET_MARK) != 0) {
        result.mark = said.mark;
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
    out = MakeVerdict(r, said, result, const_cast<std::uint8_t*>(current->packet.data),
                      current->packet.data_len, current->edited, error);
    if (error) counters.errors.Add();
    if (slot >= 0) table_->Release(slot);
    return false;
  }
  out = end_verdict_;
  if (result.mark_changed) {
    out.set_mark = true;
    out.mark = result.mark;
  }
  return false;
}

void ChainGraveyard::Bury(std::unique_ptr<ChainLinks> links) {
  std::lock_guard lock(mutex_);
  try {
    buried_.push_back(std::move(links));
  } catch (...) {
    // Out of memory: keep the links alive for good rather than free what a
    // pending packet may still resume (a leak, never a use after free).
    static_cast<void>(links.release());
  }
}

void ChainGraveyard::Sweep(bool all) {
  std::vector<std::unique_ptr<ChainLinks>> done;
  {
    std::lock_guard lock(mutex_);
    for (auto& links : buried_) {
      if (all || links->outstanding() == 0) done.push_back(std::move(links));
    }
    std::erase(buried_, nullptr);
  }
  // Destroyed outside the lock (destroy() is the extension's code).
}

std::size_t ChainGraveyard::size() {
  std::lock_guard lock(mutex_);
  return buried_.size();
}

ChainDecider::ChainDecider(std::shared_ptr<const ChainPlan> plan, std::size_t worker,
                           PendingTable* table, std::uint8_t* scratch, std::uint32_t max_edit,
                           ChainGraveyard* graveyard)
    : links_(std::make_unique<ChainLinks>(std::move(plan), worker, table, scratch, max_edit)),
      graveyard_(graveyard) {
  set_may_defer(links_->may_pend());
}

ChainDecider::~ChainDecider() {
  // Packets of this chain still pending may resume it after their
  // extension's NEXT: the links live on until the last one is answered.
  if (graveyard_ != nullptr && links_->outstanding() != 0) graveyard_->Bury(std::move(links_));
  if (graveyard_ != nullptr) graveyard_->Sweep();
}

queueio::Verdict ChainDecider::Decide(const queueio::PacketView& packet,
                                      std::uint64_t now_ns) noexcept {
  // Only called when no extension may pend (may_defer() false).
  queueio::Verdict verdict;
  links_->Run(packet, now_ns, verdict);
  return verdict;
}

decider::Decision ChainDecider::DecideOrDefer(const queueio::PacketView& packet,
                                              std::uint64_t now_ns) noexcept {
  decider::Decision decision;
  decision.deferred = links_->Run(packet, now_ns, decision.verdict);
  return decision;
}

}  // namespace verdictd::extensions
