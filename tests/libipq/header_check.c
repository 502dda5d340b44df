/* libipq.h on its own, in each dialect it promises (C89, C11; C++98 via
 * header_check.cc): built with -Wpedantic, warnings as errors. Both
 * spellings, in the include orders libipq-era programs use. */
#include <libipq.h>
#include <libipq/libipq.h>
#include <netinet/in.h>

int libipq_header_check(void);

int libipq_header_check(void)
{
	ipq_packet_msg_t m;
	ipq_peer_msg_t peer;
	struct ipq_handle *h = (struct ipq_handle *)0;
	m.packet_id = 0;
	peer.msg.mode.value = IPQ_COPY_PACKET;
	(void)h;
	return (int)(offsetof(ipq_packet_msg_t, payload) + m.packet_id + peer.msg.mode.value +
		     IPQM_PACKET + NF_ACCEPT + NFPROTO_IPV4 + IFNAMSIZ + IPQ_ERR_RTRUNC +
		     LIBIPQ_VERSION_MAJOR);
}
