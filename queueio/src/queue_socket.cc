#include "verdictd/queueio/queue_socket.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "verdictd/queueio/kernel_queue_stats.h"
#include "verdictd/queueio/parser.h"
#include "verdictd/queueio/verdict_batcher.h"

namespace verdictd::queueio {
namespace {

// Attributes of a packet message besides its payload (headers, interfaces,
// timestamp, conntrack nest, uid/gid...) stay well below this.
constexpr std::size_t kDatagramHeadroom = 4096;
constexpr std::size_t kMaxBatch = 1024;
constexpr int kAckTimeoutMs = 5000;
constexpr std::size_t kMinSendBuffer = 256 * 1024;
// max_send_bytes() of the smallest send buffer still holds any one verdict.
static_assert(kMinSendBuffer - 64 >= VerdictBatcher::kMinBufferBytes);

std::string Errno(int err) { return std::string(std::strerror(err)); }

std::string QueueName(std::uint16_t queue_num) {
  return "queue " + std::to_string(queue_num);
}

std::string FlagNames(std::uint32_t flags) {
  std::string out;
  auto add = [&](std::uint32_t bit, const char* name) {
    if ((flags & bit) == 0) return;
    if (!out.empty()) out += ",";
    out += name;
  };
  add(NFQA_CFG_F_FAIL_OPEN, "fail-open");
  add(NFQA_CFG_F_CONNTRACK, "conntrack");
  add(NFQA_CFG_F_GSO, "gso");
  add(NFQA_CFG_F_UID_GID, "uid-gid");
  add(NFQA_CFG_F_SECCTX, "secctx");
  return out.empty() ? "none" : out;
}

long ReadRmemMax() {
  std::ifstream in("/proc/sys/net/core/rmem_max");
  long value = -1;
  in >> value;
  return value;
}

}  // namespace

struct QueueSocket::Impl {
  QueueOptions options;
  mnl_socket* nl = nullptr;
  int fd = -1;
  std::uint32_t portid = 0;
  std::uint32_t seq = 0;
  bool bound = false;
  BindReport report;

  std::size_t slot_bytes = 0;
  std::vector<std::uint8_t> storage;  // batch_size slots of slot_bytes
  std::vector<iovec> iovecs;
  std::vector<mmsghdr> headers;
  std::vector<Datagram> datagrams;
  int current_timeout_ms = -2;  // SO_RCVTIMEO as last set; -2 = unknown

  // Packet messages that arrived while Open() waited for its acknowledgement.
  std::vector<std::vector<std::uint8_t>> stash;
  std::size_t stash_next = 0;

  ~Impl() {
    if (nl != nullptr) mnl_socket_close(nl);
  }

  std::uint8_t* Slot(std::size_t i) noexcept { return storage.data() + i * slot_bytes; }

  // Sends one config request with NLM_F_ACK and waits for its answer.
  // Returns 0 or a positive errno. Anything else that arrives meanwhile
  // (packets, once the bind took effect) is stashed for Receive().
  int ConfigRequest(nlmsghdr* nlh) {
    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = ++seq;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return errno;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kAckTimeoutMs);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return ETIMEDOUT;
      pollfd pfd{fd, POLLIN, 0};
      int ready = poll(&pfd, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return errno;
      if (ready == 0) return ETIMEDOUT;
      ssize_t n = recv(fd, Slot(0), slot_bytes, MSG_DONTWAIT);
      if (n < 0) {
        // ENOBUFS: messages were lost (an overrun); the answer may still come.
        if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS) continue;
        return errno;
      }
      auto datagram = std::span<const std::uint8_t>(Slot(0), static_cast<std::size_t>(n));
      bool answered = false;
      int answer = 0;
      bool other = false;
      ForEachNetlinkMessage(datagram, [&](std::span<const std::uint8_t> message) {
        nlmsghdr header;
        std::memcpy(&header, message.data(), sizeof header);
        if (header.nlmsg_type == NLMSG_ERROR && header.nlmsg_seq == nlh->nlmsg_seq &&
            message.size() >= NLMSG_HDRLEN + sizeof(int)) {
          int error;
          std::memcpy(&error, message.data() + NLMSG_HDRLEN, sizeof error);
          answered = true;
          answer = -error;
        } else {
          other = true;
        }
      });
      if (other) stash.emplace_back(datagram.begin(), datagram.end());
      if (answered) return answer;
    }
  }

  nlmsghdr* ConfigHeader(char* buf) {
    return nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, options.queue_num);
  }

  // The kernel checks flags before it looks at the queue, and a config
  // message without a command changes nothing on a queue that is not ours:
  // a side-effect-free probe. EOPNOTSUPP: the flag is not supported.
  bool FlagSupported(std::uint32_t flag) {
    alignas(nlmsghdr) char buf[256];
    nlmsghdr* nlh = ConfigHeader(buf);
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flag));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flag));
    int err = ConfigRequest(nlh);
    if (err == EAGAIN) err = ConfigRequest(nlh);  // a module was just loaded
    return err != EOPNOTSUPP;
  }

  // The receive slots: batch_size datagrams of copy range + headroom.
  void AllocateBatch() {
    const std::size_t copy = options.copy_mode == CopyMode::kPacket ? options.copy_range : 0;
    slot_bytes = NLMSG_ALIGN(copy) + kDatagramHeadroom;
    report.datagram_buffer_bytes = slot_bytes;
    storage.assign(slot_bytes * options.batch_size, 0);
    iovecs.resize(options.batch_size);
    headers.resize(options.batch_size);
    datagrams.resize(options.batch_size);
    for (std::size_t i = 0; i < options.batch_size; ++i) {
      iovecs[i] = iovec{Slot(i), slot_bytes};
      headers[i] = mmsghdr{};
      headers[i].msg_hdr.msg_iov = &iovecs[i];
      headers[i].msg_hdr.msg_iovlen = 1;
    }
  }

  void SizeBuffers() {
    const std::string q = QueueName(options.queue_num);
    if (options.receive_buffer_bytes > 0) {
      const int want = static_cast<int>(std::min<std::size_t>(options.receive_buffer_bytes, INT_MAX / 2));
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) == 0) {
        report.receive_buffer_forced = true;
      } else {
        const int force_errno = errno;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
        report.notes += "receive buffer: SO_RCVBUFFORCE refused (" + Errno(force_errno) +
                        "), SO_RCVBUF capped by net.core.rmem_max=" +
                        std::to_string(ReadRmemMax()) + "; ";
      }
    }
    int actual = 0;
    socklen_t len = sizeof actual;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &actual, &len) == 0) {
      report.receive_buffer_bytes = static_cast<std::size_t>(actual);
    }
    // One send carries a whole VerdictBatcher buffer (at least one maximal
    // payload verdict, ~66 KiB), and the kernel refuses a send larger than
    // the send buffer: never stay below kMinSendBuffer.
    const std::size_t send_target = std::max(options.send_buffer_bytes, kMinSendBuffer);
    int current = 0;
    socklen_t current_len = sizeof current;
    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &current, &current_len);
    if (options.send_buffer_bytes > 0 || static_cast<std::size_t>(current) < kMinSendBuffer) {
      const int want = static_cast<int>(std::min<std::size_t>(send_target, INT_MAX / 2));
      if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
        report.notes += "send buffer capped by net.core.wmem_max; ";
      }
    }
    len = sizeof actual;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &actual, &len) == 0) {
      report.send_buffer_bytes = static_cast<std::size_t>(actual);
    }
    // Overruns are seen as gaps in the packet ids and in the kernel's
    // user_dropped counter; an error return per overrun adds nothing.
    int one = 1;
    if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one) != 0) {
      throw QueueError(q + ": cannot set NETLINK_NO_ENOBUFS: " + Errno(errno));
    }
    // Errors about verdicts echo only the header, not a replacement payload.
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  }

  [[noreturn]] void ThrowBindError(int err, std::uint32_t flags) {
    const std::string q = QueueName(options.queue_num);
    switch (err) {
      case EPERM: {
        // The kernel says EPERM both for a missing CAP_NET_ADMIN and for a
        // queue held by another socket; the proc file tells them apart (and
        // is itself readable only with privileges).
        const auto table = ReadKernelQueueTable();
        if (!table) {
          // After switching to an unprivileged user (a queue added by a
          // reload) the table cannot be read: say both possibilities.
          throw QueueError(q + ": permission denied binding the queue: another process holds "
                               "it, or this process lacks CAP_NET_ADMIN; check with "
                               "'cat /proc/net/netfilter/nfnetlink_queue' as root");
        }
        for (const KernelQueueStats& held : *table) {
          if (held.queue_num == options.queue_num && held.peer_portid != portid) {
            throw QueueError(q + ": already bound by another process (netlink port id " +
                             std::to_string(held.peer_portid) +
                             "); stop it or choose another queue number");
          }
        }
        throw QueueError(q + ": permission denied binding the queue; run as root or grant "
                             "CAP_NET_ADMIN (e.g. setcap cap_net_admin+ep)");
      }
      case EBUSY:
        throw QueueError(q + ": already bound (EBUSY); stop the other user of this queue or "
                             "choose another queue number");
      case EOPNOTSUPP: {
        std::string unsupported;
        for (std::uint32_t bit : {std::uint32_t{NFQA_CFG_F_FAIL_OPEN},
                                  std::uint32_t{NFQA_CFG_F_CONNTRACK}, std::uint32_t{NFQA_CFG_F_GSO},
                                  std::uint32_t{NFQA_CFG_F_UID_GID},
                                  std::uint32_t{NFQA_CFG_F_SECCTX}}) {
          if ((flags & bit) && !FlagSupported(bit)) {
            unsupported += (unsupported.empty() ? "" : ",") + FlagNames(bit);
          }
        }
        throw QueueError(q + ": the kernel does not support the queue flag(s) " +
                         (unsupported.empty() ? FlagNames(flags) : unsupported) +
                         "; turn them off" +
                         ((flags & NFQA_CFG_F_CONNTRACK)
                              ? " (conntrack needs nf_conntrack_netlink with the queue glue,"
                                " CONFIG_NETFILTER_NETLINK_GLUE_CT: modprobe nf_conntrack_netlink)"
                              : "") +
                         ((flags & NFQA_CFG_F_SECCTX)
                              ? " (secctx needs a kernel built with CONFIG_NETWORK_SECMARK)"
                              : ""));
      }
      default:
        throw QueueError(q + ": binding failed: " + Errno(err));
    }
  }

  void Bind() {
    std::uint32_t flags = 0;
    if (options.fail_open) flags |= NFQA_CFG_F_FAIL_OPEN;
    if (options.conntrack) flags |= NFQA_CFG_F_CONNTRACK;
    if (options.gso) flags |= NFQA_CFG_F_GSO;
    if (options.uid_gid) flags |= NFQA_CFG_F_UID_GID;
    if (options.secctx) flags |= NFQA_CFG_F_SECCTX;
    const std::uint32_t mask = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_CONNTRACK | NFQA_CFG_F_GSO |
                               NFQA_CFG_F_UID_GID | NFQA_CFG_F_SECCTX;

    report.conntrack_supported = FlagSupported(NFQA_CFG_F_CONNTRACK);
    if (options.conntrack && !report.conntrack_supported) {
      throw QueueError(QueueName(options.queue_num) +
                       ": the conntrack flag needs nf_conntrack_netlink and its queue glue "
                       "(CONFIG_NETFILTER_NETLINK_GLUE_CT), which this kernel lacks; modprobe "
                       "nf_conntrack_netlink, use a kernel built with the glue, or turn "
                       "conntrack off");
    }

    alignas(nlmsghdr) char buf[512];
    nlmsghdr* nlh = ConfigHeader(buf);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
    const std::uint8_t mode =
        options.copy_mode == CopyMode::kPacket ? NFQNL_COPY_PACKET : NFQNL_COPY_META;
    nfq_nlmsg_cfg_put_params(nlh, mode, static_cast<int>(options.copy_range));
    nfq_nlmsg_cfg_put_qmaxlen(nlh, options.max_queue_length);
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(mask));
    int err = ConfigRequest(nlh);
    if (err == EAGAIN) err = ConfigRequest(nlh);  // conntrack module loaded on demand
    if (err != 0) ThrowBindError(err, flags);
    bound = true;
    report.flags = flags;
    report.early_datagrams = stash.size();
  }

  bool SetTimeout(int timeout_ms) noexcept {
    if (timeout_ms == current_timeout_ms) return true;
    timeval tv{};
    if (timeout_ms > 0) {
      tv.tv_sec = timeout_ms / 1000;
      tv.tv_usec = (timeout_ms % 1000) * 1000;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return false;
    current_timeout_ms = timeout_ms;
    return true;
  }

  ReceiveStatus ReceiveStash(ReceiveBatch& batch) noexcept {
    std::size_t count = 0;
    while (count < options.batch_size && stash_next < stash.size()) {
      const auto& bytes = stash[stash_next++];
      const std::size_t n = std::min(bytes.size(), slot_bytes);
      std::memcpy(Slot(count), bytes.data(), n);
      datagrams[count] = Datagram{{Slot(count), n}, bytes.size() > slot_bytes};
      ++count;
    }
    batch.datagrams = {datagrams.data(), count};
    return ReceiveStatus::kOk;
  }
};

QueueSocket::QueueSocket(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<QueueSocket> QueueSocket::Open(const QueueOptions& options) {
  const std::string q = QueueName(options.queue_num);
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  auto& o = impl->options;
  if (o.copy_mode == CopyMode::kPacket && (o.copy_range == 0 || o.copy_range > 0xffff)) {
    throw QueueError(q + ": copy range " + std::to_string(o.copy_range) +
                     " is out of range; use 1..65535");
  }
  if (o.max_queue_length == 0) throw QueueError(q + ": max queue length must be at least 1");
  if (o.batch_size == 0 || o.batch_size > kMaxBatch) {
    throw QueueError(q + ": receive batch size " + std::to_string(o.batch_size) +
                     " is out of range; use 1.." + std::to_string(kMaxBatch));
  }

  impl->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (impl->nl == nullptr) throw QueueError(q + ": cannot open a netfilter netlink socket: " + Errno(errno));
  if (mnl_socket_bind(impl->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    throw QueueError(q + ": cannot bind the netlink socket: " + Errno(errno));
  }
  impl->fd = mnl_socket_get_fd(impl->nl);
  impl->portid = mnl_socket_get_portid(impl->nl);
  impl->report.portid = impl->portid;
  // Only the kernel may talk to this socket.
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (connect(impl->fd, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel) != 0) {
    throw QueueError(q + ": cannot connect the netlink socket to the kernel: " + Errno(errno));
  }

  impl->AllocateBatch();
  impl->SizeBuffers();
  impl->Bind();
  return std::unique_ptr<QueueSocket>(new QueueSocket(std::move(impl)));
}

std::unique_ptr<QueueSocket> QueueSocket::Adopt(int fd, std::uint32_t portid,
                                                const QueueOptions& options,
                                                const BindReport& report) {
  const std::string q = QueueName(options.queue_num);
  int protocol = -1;
  socklen_t size = sizeof protocol;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &size) != 0) {
    throw QueueError(q + ": the handed-over descriptor " + std::to_string(fd) +
                     " is not a socket: " + Errno(errno));
  }
  if (protocol != NETLINK_NETFILTER) {
    throw QueueError(q + ": the handed-over descriptor " + std::to_string(fd) +
                     " is not a netfilter netlink socket (protocol " + std::to_string(protocol) +
                     ")");
  }
  sockaddr_nl local{};
  socklen_t local_size = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
      local.nl_family != AF_NETLINK) {
    throw QueueError(q + ": cannot read the handed-over socket's netlink address: " +
                     Errno(errno));
  }
  if (local.nl_pid != portid) {
    throw QueueError(q + ": the handed-over socket has port id " + std::to_string(local.nl_pid) +
                     ", the old process said " + std::to_string(portid) +
                     "; refusing a socket that is not the bound one");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.batch_size == 0 || options.batch_size > kMaxBatch) {
    throw QueueError(q + ": receive batch size " + std::to_string(options.batch_size) +
                     " is out of range; use 1.." + std::to_string(kMaxBatch));
  }
  impl->nl = mnl_socket_fdopen(fd);
  if (impl->nl == nullptr) throw QueueError(q + ": cannot adopt the netlink socket: " + Errno(errno));
  impl->fd = fd;
  impl->portid = portid;
  impl->report = report;
  impl->report.portid = portid;
  impl->report.early_datagrams = 0;
  impl->report.notes.clear();
  impl->AllocateBatch();
  impl->SizeBuffers();
  impl->bound = true;
  return std::unique_ptr<QueueSocket>(new QueueSocket(std::move(impl)));
}

QueueSocket::~QueueSocket() { Unbind(); }

ReceiveStatus QueueSocket::Receive(ReceiveBatch& batch, bool block, int timeout_ms) noexcept {
  Impl& s = *impl_;
  batch.datagrams = {};
  batch.last_errno = 0;
  if (s.stash_next < s.stash.size()) return s.ReceiveStash(batch);

  int flags = MSG_DONTWAIT;
  if (block && timeout_ms != 0) {
    if (!s.SetTimeout(timeout_ms < 0 ? -1 : timeout_ms)) {
      batch.last_errno = errno;
      return ReceiveStatus::kError;
    }
    // The first datagram may wait (up to SO_RCVTIMEO); the rest are taken only if there.
    flags = MSG_WAITFORONE;
  }
  const int n = recvmmsg(s.fd, s.headers.data(), static_cast<unsigned>(s.options.batch_size),
                         flags, nullptr);
  if (n < 0) {
    const int err = errno;
    batch.last_errno = err;
    switch (err) {
      case EAGAIN:
        return ReceiveStatus::kWouldBlock;
      case EINTR:
        return ReceiveStatus::kInterrupted;
      case ENOBUFS:
        return ReceiveStatus::kOverrun;
      default:
        return ReceiveStatus::kError;
    }
  }
  for (int i = 0; i < n; ++i) {
    const mmsghdr& h = s.headers[static_cast<std::size_t>(i)];
    const bool cut = (h.msg_hdr.msg_flags & MSG_TRUNC) != 0;
    const std::size_t len = std::min<std::size_t>(h.msg_len, s.slot_bytes);
    s.datagrams[static_cast<std::size_t>(i)] = Datagram{{s.Slot(static_cast<std::size_t>(i)), len}, cut};
  }
  batch.datagrams = {s.datagrams.data(), static_cast<std::size_t>(n)};
  return n > 0 ? ReceiveStatus::kOk : ReceiveStatus::kWouldBlock;
}

SendStatus QueueSocket::Send(std::span<const std::uint8_t> messages) noexcept {
  Impl& s = *impl_;
  for (;;) {
    const ssize_t n = send(s.fd, messages.data(), messages.size(), 0);
    if (n >= 0) return SendStatus::kOk;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return SendStatus::kWouldBlock;
    return SendStatus::kError;
  }
}

void QueueSocket::Unbind() noexcept {
  Impl& s = *impl_;
  if (!s.bound) return;
  s.bound = false;
  // No acknowledgement is awaited: packet messages still in the socket must
  // not be read and thrown away here. Closing the socket unbinds as well.
  alignas(nlmsghdr) char buf[128];
  nlmsghdr* nlh = s.ConfigHeader(buf);
  nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
  nlh->nlmsg_seq = ++s.seq;
  (void)send(s.fd, nlh, nlh->nlmsg_len, 0);
}

bool QueueSocket::SetMaxLength(std::uint32_t max_length) noexcept {
  Impl& s = *impl_;
  // Not acknowledged, like Unbind(): the answer would arrive among packet
  // messages, which this call must not read and drop.
  alignas(nlmsghdr) char buf[128];
  nlmsghdr* nlh = s.ConfigHeader(buf);
  nfq_nlmsg_cfg_put_qmaxlen(nlh, max_length);
  nlh->nlmsg_seq = ++s.seq;
  for (;;) {
    if (send(s.fd, nlh, nlh->nlmsg_len, 0) >= 0) return true;
    if (errno != EINTR) return false;
  }
}

bool QueueSocket::StopQueueing() noexcept { return SetMaxLength(0); }

void QueueSocket::Detach() noexcept { impl_->bound = false; }

std::size_t QueueSocket::max_send_bytes() const noexcept {
  // netlink_sendmsg() refuses len > sk_sndbuf - 32; SO_SNDBUF reports sk_sndbuf.
  const std::size_t sndbuf = impl_->report.send_buffer_bytes;
  return sndbuf > 64 ? sndbuf - 64 : 0;
}

std::uint16_t QueueSocket::queue_num() const noexcept { return impl_->options.queue_num; }
int QueueSocket::fd() const noexcept { return impl_->fd; }
const BindReport& QueueSocket::bind_report() const noexcept { return impl_->report; }

}  // namespace verdictd::queueio
