// The classic drain-and-batch NFQUEUE loop, as a load-test baseline: it
// blocks in recvmmsg (MSG_WAITFORONE: the first datagram blocks, the rest is
// what is already queued), accepts everything read with one batch verdict
// (NFQNL_MSG_VERDICT_BATCH up to the highest id), and repeats. Nothing else:
// no parsing beyond the packet id, no pacing, no timers. Plain socket API.
//
//   drainloop --queue N [--batch 64] [--rcvbuf-bytes 8388608]
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tool_common.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "drainloop: %s\n", message.c_str());
  std::exit(1);
}
void OnSignal(int) { g_stop = 1; }

constexpr std::size_t kDatagramBytes = 4096 + 256;

// Appends one attribute to a message being built in `buf`.
void PutAttr(std::vector<char>& buf, std::uint16_t type, const void* data, std::size_t len) {
  nlattr attr{};
  attr.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + len);
  attr.nla_type = type;
  const std::size_t at = buf.size();
  buf.resize(at + NLA_ALIGN(attr.nla_len), 0);
  std::memcpy(buf.data() + at, &attr, sizeof attr);
  std::memcpy(buf.data() + at + NLA_HDRLEN, data, len);
}

std::vector<char> Message(std::uint16_t type, std::uint16_t queue, std::uint16_t flags) {
  std::vector<char> buf(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)), 0);
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data());
  nlh->nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_QUEUE << 8) | type);
  nlh->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
  auto* nfg = reinterpret_cast<nfgenmsg*>(buf.data() + NLMSG_HDRLEN);
  nfg->nfgen_family = AF_UNSPEC;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(queue);
  return buf;
}

void Finish(std::vector<char>& buf) {
  reinterpret_cast<nlmsghdr*>(buf.data())->nlmsg_len = static_cast<std::uint32_t>(buf.size());
}

// Sends a config message and waits for its ack; dies on an error.
void Configure(int fd, std::vector<char> msg, const char* what) {
  Finish(msg);
  if (send(fd, msg.data(), msg.size(), 0) < 0) Fail(std::string(what) + ": send failed");
  // Packets may come before the ack (the queue is live once bound); the
  // first batch verdict covers them, as it covers every lower id.
  for (;;) {
    alignas(nlmsghdr) char reply[kDatagramBytes];
    const ssize_t n = recv(fd, reply, sizeof reply, 0);
    if (n < 0) Fail(std::string(what) + ": no reply");
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(reply);
    if (nlh->nlmsg_type != NLMSG_ERROR) continue;
    const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
    if (err->error != 0) {
      Fail(std::string(what) + ": " + std::strerror(-err->error) +
           " (is the queue bound by another program?)");
    }
    return;
  }
}

// The packet id of one NFQNL_MSG_PACKET at `msg` (header `nlh`), or 0.
std::uint32_t PacketId(const char* msg, const nlmsghdr& nlh) {
  if ((nlh.nlmsg_type & 0xff) != NFQNL_MSG_PACKET) return 0;
  const char* p = msg + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
  const char* end = msg + nlh.nlmsg_len;
  while (p + NLA_HDRLEN <= end) {
    nlattr attr;
    std::memcpy(&attr, p, sizeof attr);
    if (attr.nla_len < NLA_HDRLEN || p + attr.nla_len > end) return 0;
    if ((attr.nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR &&
        attr.nla_len >= NLA_HDRLEN + sizeof(nfqnl_msg_packet_hdr)) {
      nfqnl_msg_packet_hdr hdr;
      std::memcpy(&hdr, p + NLA_HDRLEN, sizeof hdr);
      return ntohl(hdr.packet_id);
    }
    p += NLA_ALIGN(attr.nla_len);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tools::Flags flags(argc, argv,
                     "usage: drainloop --queue N [--batch 64] [--rcvbuf-bytes 8388608]\n");
  const double queue_flag = flags.Num("queue", -1);
  const auto batch = static_cast<std::size_t>(flags.Num("batch", 64));
  const int rcvbuf = static_cast<int>(flags.Num("rcvbuf-bytes", 8 << 20));
  flags.CheckAllUsed();
  if (queue_flag < 0 || queue_flag > 65535 || batch == 0) flags.Die("--queue 0..65535 is needed");
  const auto queue = static_cast<std::uint16_t>(queue_flag);

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) Fail("netlink socket: " + std::string(std::strerror(errno)));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) Fail("netlink bind");
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);

  std::vector<char> bind_msg = Message(NFQNL_MSG_CONFIG, queue, NLM_F_ACK);
  nfqnl_msg_config_cmd cmd{};
  cmd.command = NFQNL_CFG_CMD_BIND;
  PutAttr(bind_msg, NFQA_CFG_CMD, &cmd, sizeof cmd);
  Configure(fd, bind_msg, "bind");
  std::vector<char> params_msg = Message(NFQNL_MSG_CONFIG, queue, NLM_F_ACK);
  nfqnl_msg_config_params params{};
  params.copy_range = htonl(4096);  // fits a datagram slot
  params.copy_mode = NFQNL_COPY_PACKET;
  PutAttr(params_msg, NFQA_CFG_PARAMS, &params, sizeof params);
  Configure(fd, params_msg, "copy mode");
  std::fprintf(stderr, "drainloop: queue %u bound, batch %zu\n", queue, batch);

  std::vector<char> storage(batch * kDatagramBytes);
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> msgs(batch);
  for (std::size_t i = 0; i < batch; ++i) {
    iov[i] = {storage.data() + i * kDatagramBytes, kDatagramBytes};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  nfqnl_msg_verdict_hdr verdict{};
  verdict.verdict = htonl(NF_ACCEPT);
  std::vector<char> out = Message(NFQNL_MSG_VERDICT_BATCH, queue, 0);
  const std::size_t header = out.size();
  PutAttr(out, NFQA_VERDICT_HDR, &verdict, sizeof verdict);
  Finish(out);

  while (!g_stop) {
    const int n = recvmmsg(fd, msgs.data(), static_cast<unsigned>(batch), MSG_WAITFORONE, nullptr);
    if (n < 0) {
      if (errno == EINTR || errno == ENOBUFS) continue;
      Fail("recvmmsg: " + std::string(std::strerror(errno)));
    }
    std::uint32_t highest = 0;
    for (int i = 0; i < n; ++i) {
      const char* base = static_cast<const char*>(iov[i].iov_base);
      const std::size_t length = msgs[i].msg_len;
      std::size_t offset = 0;
      while (offset + sizeof(nlmsghdr) <= length) {
        nlmsghdr nlh;
        std::memcpy(&nlh, base + offset, sizeof nlh);
        if (nlh.nlmsg_len < sizeof nlh || offset + nlh.nlmsg_len > length) break;
        const std::uint32_t id = PacketId(base + offset, nlh);
        if (id > highest) highest = id;
        offset += NLMSG_ALIGN(nlh.nlmsg_len);
      }
    }
    if (highest == 0) continue;
    verdict.id = htonl(highest);
    std::memcpy(out.data() + header + NLA_HDRLEN, &verdict, sizeof verdict);
    if (send(fd, out.data(), out.size(), 0) < 0 && errno != ENOBUFS) {
      Fail("send verdict: " + std::string(std::strerror(errno)));
    }
  }
  close(fd);
  return 0;
}
