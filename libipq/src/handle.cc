#include "handle.hh"

#include <linux/capability.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "errors.hh"
#include "libipq/libipq.h"
#include "record.hh"
#include "verdictd/base/clock.h"
#include "verdictd/base/verdict_kind.h"
#include "verdictd/queueio/kernel_queue_stats.h"
#include "verdictd/queueio/verdict_encoder.h"

namespace verdictd::libipq {
namespace {

constexpr std::uint64_t kRateWindowNs = 20'000'000;
// Coalescing: only on a queue this busy, waiting for about this many packets.
constexpr std::uint64_t kCoalesceMinPps = 4000;
constexpr std::uint64_t kCoalesceTarget = 32;
// NFQA_PAYLOAD carries its length in 16 bits.
constexpr std::size_t kMaxReplacement = 0xffff - 4;
// What ipq_set_verdict() returned before: the bytes of the message it sent.
constexpr std::size_t kOldVerdictMessage = NLMSG_HDRLEN + sizeof(ipq_peer_msg_t);

bool HasNetAdmin() noexcept {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return true;  // unknown: do not claim it is missing
  return (data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32))) != 0;
}

// Another socket holds the queue (readable only with privileges; false when unknown).
bool HeldByOther(std::uint16_t queue_num) {
  const auto table = queueio::ReadKernelQueueTable();
  if (!table) return false;
  for (const queueio::KernelQueueStats& q : *table) {
    if (q.queue_num == queue_num) return true;
  }
  return false;
}

// ip_queue's verdicts (NF_QUEUE with its target queue in the upper bits).
bool ToVerdict(unsigned int code, queueio::Verdict& out) noexcept {
  const std::optional<base::VerdictKind> kind = base::VerdictKindOfKernelCode(code);
  if (!kind) return false;
  out = queueio::Verdict::Of(*kind, base::VerdictKindInfoOf(*kind).has_target_queue
                                        ? static_cast<std::uint16_t>(code >> NF_VERDICT_QBITS)
                                        : 0);
  return true;
}

}  // namespace

Handle::Handle(std::uint8_t family, const Settings& settings)
    : family_(family), settings_(settings) {}

Handle::~Handle() { Close(); }

void Handle::Close() noexcept {
  if (socket_ == nullptr) return;
  Flush();
  batcher_.reset();
  socket_.reset();  // unbinds
  batch_ = {};
  datagram_ = offset_ = 0;
}

bool Handle::Bind(std::uint8_t mode, std::size_t range) noexcept {
  const std::string q = QueueName();
  Close();
  queueio::QueueOptions o;
  o.queue_num = settings_.queue_num;
  o.copy_mode = mode == IPQ_COPY_PACKET ? queueio::CopyMode::kPacket : queueio::CopyMode::kMeta;
  // ip_queue: a range of 0 (or above the maximum) copies the whole packet.
  o.copy_range = (range == 0 || range > 0xffff) ? 0xffff : static_cast<std::uint32_t>(range);
  o.max_queue_length = settings_.max_queue_length;
  o.fail_open = settings_.fail_open;
  // Segmented packets with complete checksums, as ip_queue gave them; a GSO
  // super-packet would not fit the buffers old programs use.
  o.gso = false;
  o.receive_buffer_bytes = settings_.receive_buffer_bytes;
  o.batch_size = settings_.batch_size;
  try {
    auto socket = queueio::QueueSocket::Open(o);
    // Every packet the kernel holds for us may be deferred at once (the
    // program holds it): size the deferred table for the whole queue.
    const std::size_t capacity = std::size_t{settings_.max_queue_length} + settings_.batch_size;
    // 256 KiB of verdicts at most, capped at what one send to the socket carries.
    auto batcher = std::make_unique<queueio::VerdictBatcher>(o.queue_num, *socket, 256 * 1024,
                                                             capacity, capacity);
    batcher->set_connmark_supported(false);
    socket_ = std::move(socket);
    batcher_ = std::move(batcher);
  } catch (const queueio::QueueError& e) {
    const int err = errno;
    const std::string what = e.what();
    if (what.find("permission denied") != std::string::npos ||
        what.find("already bound") != std::string::npos) {
      // The kernel says EPERM for both; ip_queue said EBUSY for a held queue.
      if (!HasNetAdmin()) {
        SetError(IPQ_ERR_BIND, EPERM,
                 q + ": no CAP_NET_ADMIN; run as root or grant it (setcap cap_net_admin+ep)");
      } else {
        const bool held = HeldByOther(settings_.queue_num);
        SetError(IPQ_ERR_BIND, EBUSY,
                 held || what.find("already bound") != std::string::npos
                     ? what
                     : q + ": another process holds the queue; stop it or set LIBIPQ_QUEUE");
      }
    } else if (what.find("cannot open") != std::string::npos) {
      SetError(IPQ_ERR_SOCKET, err != 0 ? err : EIO, what);
    } else {
      SetError(IPQ_ERR_BIND, err != 0 ? err : EINVAL, what);
    }
    return false;
  } catch (const std::bad_alloc&) {
    SetError(IPQ_ERR_BUFFER, ENOMEM, q + ": out of memory for the receive buffers");
    return false;
  } catch (...) {
    SetError(IPQ_ERR_IMPL, EIO, q + ": unexpected failure while binding");
    return false;
  }
  mode_ = mode;
  range_ = o.copy_range;
  return true;
}

int Handle::SetMode(std::uint8_t mode, std::size_t range) noexcept {
  if (mode > IPQ_COPY_MAX) {
    return SetError(
        IPQ_ERR_SUPP, EINVAL,
        "copy mode " + std::to_string(mode) + " is unknown; use IPQ_COPY_META or IPQ_COPY_PACKET");
  }
  if (mode == IPQ_COPY_NONE) {
    Close();
    return 1;
  }
  const std::uint32_t wanted =
      (range == 0 || range > 0xffff) ? 0xffff : static_cast<std::uint32_t>(range);
  if (socket_ != nullptr && mode == mode_ && (mode == IPQ_COPY_META || wanted == range_)) return 1;
  // A different mode binds again: packets queued at that moment are dropped
  // by the kernel, as they were when ip_queue changed its mode.
  return Bind(mode, range) ? 1 : -1;
}

bool Handle::Flush() noexcept {
  if (batcher_ == nullptr || batcher_->pending() == 0) return true;
  if (batcher_->Flush(*socket_)) return true;
  SetError(
      IPQ_ERR_SEND, errno,
      QueueName() +
          ": the kernel refused a verdict message; those packets wait until the queue is unbound");
  return false;
}

bool Handle::Record(std::uint32_t id, const queueio::Verdict& verdict) noexcept {
  if (batcher_->Add(id, verdict) == queueio::AddStatus::kOk) return true;
  if (!Flush()) return false;
  // An empty batcher always has room for one verdict.
  return batcher_->Add(id, verdict) == queueio::AddStatus::kOk;
}

void Handle::LibraryVerdict(std::uint32_t id) noexcept {
  ++stats_.library_verdicts;
  Record(id, settings_.fail_open ? queueio::Verdict::Accept() : queueio::Verdict::Drop());
}

bool Handle::HasUnread() const noexcept { return datagram_ < batch_.datagrams.size(); }

void Handle::Coalesce(int timeout_us, std::uint64_t deadline_ns) noexcept {
  std::uint64_t pause = std::min<std::uint64_t>(kCoalesceTarget * 1'000'000'000 / rate_pps_,
                                                std::uint64_t{settings_.coalesce_us} * 1000);
  if (timeout_us > 0) {
    const std::uint64_t now = base::MonotonicNanos();
    if (now >= deadline_ns) return;
    pause = std::min(pause, deadline_ns - now);
  }
  ++stats_.coalesce_pauses;
  timespec ts{static_cast<time_t>(pause / 1'000'000'000), static_cast<long>(pause % 1'000'000'000)};
  clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
}

void Handle::Received() noexcept {
  datagram_ = 0;
  offset_ = 0;
  // One clock read per batch: the timestamp of packets without one.
  receipt_time_ns_ = static_cast<std::int64_t>(base::RealtimeNanos());
  const std::uint64_t mono = base::MonotonicNanos();
  interfaces_.set_now(mono);
  window_packets_ += batch_.datagrams.size();
  if (mono - window_start_ns_ >= kRateWindowNs) {
    rate_pps_ = window_packets_ * 1'000'000'000 / (mono - window_start_ns_);
    window_start_ns_ = mono;
    window_packets_ = 0;
  }
}

std::string Handle::QueueName() const { return "queue " + std::to_string(settings_.queue_num); }

Handle::Wait Handle::Receive(int timeout_us, std::uint64_t deadline_ns) noexcept {
  // A full last batch: more is probably waiting, look without waiting. A
  // short one emptied the socket: on a busy queue let packets gather for a
  // moment (verdicts were sent), else wait right away.
  bool look_first = timeout_us < 0 || batch_.datagrams.size() >= settings_.batch_size;
  if (!look_first) {
    if (base::MonotonicNanos() - window_start_ns_ >= kRateWindowNs) rate_pps_ = 0;  // idle
    if (settings_.coalesce_us > 0 && rate_pps_ >= kCoalesceMinPps) {
      Coalesce(timeout_us, deadline_ns);
      look_first = true;
    }
  }
  for (;;) {
    bool block = false;
    if (!look_first && timeout_us == 0) {
      block = true;  // one recvmmsg that waits for the first datagram
    } else if (!look_first) {
      // The timeout is in microseconds: poll for exactly what is left.
      const std::uint64_t now = base::MonotonicNanos();
      if (now >= deadline_ns) {
        SetError(IPQ_ERR_TIMEOUT, 0);
        return Wait::kTimeout;
      }
      const std::uint64_t left = deadline_ns - now;
      timespec ts{static_cast<time_t>(left / 1'000'000'000),
                  static_cast<long>(left % 1'000'000'000)};
      pollfd pfd{socket_->fd(), POLLIN, 0};
      const int ready = ppoll(&pfd, 1, &ts, nullptr);
      if (ready < 0 && errno == EINTR) return Wait::kTimeout;  // as select() did: return 0
      if (ready < 0) {
        SetError(IPQ_ERR_RECV, errno, QueueName() + ": poll on the queue socket failed");
        return Wait::kFailed;
      }
      if (ready == 0) {
        SetError(IPQ_ERR_TIMEOUT, 0);
        return Wait::kTimeout;
      }
    }
    look_first = false;
    ++stats_.receive_calls;
    switch (socket_->Receive(batch_, block, -1)) {
      case queueio::ReceiveStatus::kOk:
        Received();
        return Wait::kGot;
      case queueio::ReceiveStatus::kWouldBlock:
        if (timeout_us < 0) {
          SetError(IPQ_ERR_TIMEOUT, 0);
          return Wait::kTimeout;
        }
        continue;
      case queueio::ReceiveStatus::kInterrupted:
        if (timeout_us != 0) return Wait::kTimeout;
        SetError(IPQ_ERR_RECV, EINTR, QueueName() + ": interrupted by a signal");
        return Wait::kFailed;
      case queueio::ReceiveStatus::kOverrun:
        // The kernel dropped messages (socket full): counted, not fatal. What
        // it dropped is gone; the rest of the queue goes on.
        ++stats_.enobufs;
        look_first = true;
        continue;
      case queueio::ReceiveStatus::kError:
        SetError(IPQ_ERR_RECV, batch_.last_errno, QueueName() + ": receive failed");
        return Wait::kFailed;
    }
  }
}

long Handle::Read(std::span<std::uint8_t> out, int timeout_us) noexcept {
  reader_.store(pthread_self(), std::memory_order_relaxed);
  if (out.size() < sizeof(nlmsgerr)) {
    return SetError(IPQ_ERR_RECVBUF, EINVAL,
                    "the buffer of ipq_read() is " + std::to_string(out.size()) +
                        " bytes, less than an error message (" + std::to_string(sizeof(nlmsgerr)) +
                        ")");
  }
  if (socket_ == nullptr) {
    return SetError(IPQ_ERR_IMPL, EINVAL,
                    "no queue is bound: call ipq_set_mode(h, IPQ_COPY_PACKET, range) first");
  }
  const std::uint64_t deadline =
      timeout_us > 0 ? base::MonotonicNanos() + std::uint64_t(timeout_us) * 1000 : 0;
  RecordContext context;
  context.interfaces = &interfaces_;
  context.family = family_;
  for (;;) {
    while (HasUnread()) {
      const queueio::Datagram& d = batch_.datagrams[datagram_];
      std::span<const std::uint8_t> rest = d.bytes.subspan(std::min(offset_, d.bytes.size()));
      nlmsghdr header{};
      bool last = true;
      if (rest.size() >= sizeof header) {
        std::memcpy(&header, rest.data(), sizeof header);
        if (header.nlmsg_len >= sizeof header && header.nlmsg_len < rest.size()) {
          offset_ += NLMSG_ALIGN(header.nlmsg_len);
          last = offset_ >= d.bytes.size();
          rest = rest.first(header.nlmsg_len);
        }
      }
      if (last) {
        ++datagram_;
        offset_ = 0;
      }
      if (rest.size() < NLMSG_HDRLEN) continue;
      context.receipt_time_ns = receipt_time_ns_;
      const RecordResult r = FormatMessageRecord(rest, context, out);
      switch (r.status) {
        case RecordStatus::kPacket:
          if (batcher_->Defer(r.id) != queueio::AddStatus::kOk) {
            // Cannot happen with the table sized for the queue; stay correct:
            // with the flush, nothing pending can cover this packet.
            Flush();
            batcher_->Defer(r.id);
          }
          ++stats_.packets;
          return static_cast<long>(r.length);
        case RecordStatus::kError:
          ++stats_.errors;
          return static_cast<long>(r.length);
        case RecordStatus::kTooSmall:
          if (r.has_id) LibraryVerdict(r.id);
          if (!HasUnread()) Flush();
          return SetError(IPQ_ERR_RTRUNC, EMSGSIZE,
                          "a message of " + std::to_string(r.length) +
                              " bytes does not fit the buffer of ipq_read() (" +
                              std::to_string(out.size()) + " bytes); the packet was given " +
                              (settings_.fail_open ? "NF_ACCEPT" : "NF_DROP"));
        case RecordStatus::kOtherFamily:
        case RecordStatus::kMalformed:
          if (r.has_id) LibraryVerdict(r.id);
          continue;
        case RecordStatus::kIgnore:
          continue;
      }
    }
    // Everything received was handed out: no verdict may wait for the next
    // packet, least of all while the program waits in here.
    if (!Flush()) return -1;
    switch (Receive(timeout_us, deadline)) {
      case Wait::kGot:
        continue;
      case Wait::kTimeout:
        return 0;
      case Wait::kFailed:
        return -1;
    }
  }
}

int Handle::SetVerdict(unsigned long id, unsigned int code,
                       std::span<const std::uint8_t> data) noexcept {
  if (id > UINT32_MAX) {
    return SetError(IPQ_ERR_SUPP, EINVAL,
                    "packet id " + std::to_string(id) + " is not one ipq_read() gave");
  }
  queueio::Verdict verdict;
  if (!ToVerdict(code, verdict)) {
    return SetError(
        IPQ_ERR_SUPP, EINVAL,
        "verdict " + std::to_string(code) +
            " is unknown; use NF_ACCEPT, NF_DROP, NF_REPEAT, NF_STOP or NF_QUEUE_NR(n)");
  }
  if (data.size() > kMaxReplacement) {
    return SetError(IPQ_ERR_SUPP, EINVAL,
                    "a replacement packet of " + std::to_string(data.size()) +
                        " bytes is longer than NFQUEUE carries (" +
                        std::to_string(kMaxReplacement) + ")");
  }
  if (socket_ == nullptr) {
    return SetError(IPQ_ERR_IMPL, EINVAL, "no queue is bound: call ipq_set_mode() first");
  }
  verdict.replacement = data;  // copied into the batcher's buffer by Add()
  if (!pthread_equal(reader_.load(std::memory_order_relaxed), pthread_self())) {
    return SendDirect(static_cast<std::uint32_t>(id), verdict);
  }
  if (!Record(static_cast<std::uint32_t>(id), verdict)) return -1;
  if (!HasUnread() && !Flush()) return -1;
  return static_cast<int>(std::min<std::size_t>(kOldVerdictMessage + data.size(), INT_MAX));
}

int Handle::SendDirect(std::uint32_t id, const queueio::Verdict& verdict) noexcept {
  // Another thread than the reader: one single verdict message, now. It can
  // never be folded into a batch, so it covers no other packet.
  std::uint8_t plain[256];
  std::vector<std::uint8_t> large;
  std::span<std::uint8_t> buffer(plain);
  if (!verdict.replacement.empty()) {
    try {
      large.resize(queueio::MaxVerdictMessageSize(verdict.replacement.size()));
    } catch (const std::bad_alloc&) {
      return SetError(IPQ_ERR_BUFFER, ENOMEM, QueueName() + ": no memory for a replacement packet");
    }
    buffer = large;
  }
  const std::size_t n = queueio::EncodeVerdict(buffer, settings_.queue_num, id, verdict, 0);
  if (n == 0 || socket_->Send(buffer.first(n)) != queueio::SendStatus::kOk) {
    return SetError(IPQ_ERR_SEND, errno, QueueName() + ": the kernel refused a verdict message");
  }
  return static_cast<int>(
      std::min<std::size_t>(kOldVerdictMessage + verdict.replacement.size(), INT_MAX));
}

}  // namespace verdictd::libipq
