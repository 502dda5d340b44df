#include "verdictd/queueio/verdict_encoder.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

namespace verdictd::queueio {
namespace {

constexpr std::size_t kHeaderSize = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
constexpr std::size_t kVerdictHdrAttrSize = MNL_ATTR_HDRLEN + sizeof(nfqnl_msg_verdict_hdr);
constexpr std::size_t kU32AttrSize = MNL_ATTR_HDRLEN + sizeof(std::uint32_t);
// NFQA_PAYLOAD's length travels in the 16-bit nla_len.
constexpr std::size_t kMaxReplacement = 0xffff - MNL_ATTR_HDRLEN;

// The kernel codes come from the verdict kinds' table (base/verdict_kind.h);
// the encoder tests check each against <linux/netfilter.h>.
std::uint32_t VerdictCode(const Verdict& verdict) noexcept {
  const base::VerdictKindInfo& kind = base::VerdictKindInfoOf(verdict.kind);
  if (!kind.has_target_queue) return kind.kernel_code;
  return kind.kernel_code | (std::uint32_t{verdict.target_queue} << NF_VERDICT_QBITS);
}

nlmsghdr* PutHeader(std::span<std::uint8_t> out, int type, std::uint16_t queue_num,
                    std::uint32_t seq) noexcept {
  nlmsghdr* nlh = nfq_nlmsg_put(reinterpret_cast<char*>(out.data()), type, queue_num);
  nlh->nlmsg_seq = seq;
  return nlh;
}

}  // namespace

std::size_t EncodeVerdict(std::span<std::uint8_t> out, std::uint16_t queue_num, std::uint32_t id,
                          const Verdict& verdict, std::uint32_t seq) noexcept {
  if (verdict.replacement.size() > kMaxReplacement) return 0;
  std::size_t need = kHeaderSize + kVerdictHdrAttrSize;
  if (verdict.set_mark) need += kU32AttrSize;
  if (verdict.set_connmark) need += MNL_ATTR_HDRLEN + kU32AttrSize;
  if (!verdict.replacement.empty()) need += MNL_ALIGN(MNL_ATTR_HDRLEN + verdict.replacement.size());
  if (out.size() < need) return 0;

  nlmsghdr* nlh = PutHeader(out, NFQNL_MSG_VERDICT, queue_num, seq);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), static_cast<int>(VerdictCode(verdict)));
  if (verdict.set_mark) nfq_nlmsg_verdict_put_mark(nlh, verdict.mark);
  if (verdict.set_connmark) {
    // Applied only when nf_conntrack_netlink is loaded; the kernel ignores
    // NFQA_CT otherwise (callers may strip it then, see VerdictBatcher).
    nlattr* nest = mnl_attr_nest_start(nlh, NFQA_CT);
    mnl_attr_put_u32(nlh, CTA_MARK, htonl(verdict.connmark));
    mnl_attr_nest_end(nlh, nest);
  }
  if (!verdict.replacement.empty()) {
    nfq_nlmsg_verdict_put_pkt(nlh, verdict.replacement.data(),
                              static_cast<std::uint32_t>(verdict.replacement.size()));
  }
  return NLMSG_ALIGN(nlh->nlmsg_len);
}

std::size_t EncodeBatchVerdict(std::span<std::uint8_t> out, std::uint16_t queue_num,
                               std::uint32_t last_id, const Verdict& verdict,
                               std::uint32_t seq) noexcept {
  if (!verdict.replacement.empty() || verdict.set_connmark) return 0;
  std::size_t need = kHeaderSize + kVerdictHdrAttrSize;
  if (verdict.set_mark) need += kU32AttrSize;
  if (out.size() < need) return 0;

  nlmsghdr* nlh = PutHeader(out, NFQNL_MSG_VERDICT_BATCH, queue_num, seq);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(last_id), static_cast<int>(VerdictCode(verdict)));
  if (verdict.set_mark) nfq_nlmsg_verdict_put_mark(nlh, verdict.mark);
  return NLMSG_ALIGN(nlh->nlmsg_len);
}

}  // namespace verdictd::queueio
