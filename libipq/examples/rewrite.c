/*
 * rewrite: turns the lowercase letters of every queued UDP datagram's
 * payload into capitals, fixes the UDP checksum (and the IPv4 header
 * checksum), and hands the packet back with ipq_set_verdict(..., len, buf).
 * Other packets pass unchanged.
 *
 *   iptables-legacy -A FORWARD -p udp --dport 9000 -j QUEUE
 *   rewrite [COUNT]      # stop after COUNT rewritten datagrams (default: never)
 *
 * The kernel drops a modified packet whose checksums are wrong, so both are
 * computed again here (RFC 768 / RFC 1071).
 */
#include <libipq.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUFSIZE (65535 + 4096)

static uint32_t sum16(const unsigned char *p, size_t len, uint32_t sum)
{
	size_t i;
	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Rewrites an IPv4 UDP packet in place; returns 1 when it was one. */
static int rewrite_udp(unsigned char *ip, size_t len)
{
	size_t ihl, i, udp_len;
	unsigned char *udp;
	uint32_t sum;
	uint16_t check;

	if (len < 20 || (ip[0] >> 4) != 4 || ip[9] != IPPROTO_UDP)
		return 0;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	if (ihl < 20 || len < ihl + 8)
		return 0;
	udp = ip + ihl;
	udp_len = (size_t)(udp[4] << 8 | udp[5]);
	if (udp_len < 8 || ihl + udp_len > len)
		return 0;
	for (i = 8; i < udp_len; i++)
		if (udp[i] >= 'a' && udp[i] <= 'z')
			udp[i] = (unsigned char)(udp[i] - 'a' + 'A');

	/* UDP checksum over the pseudo header and the datagram. */
	udp[6] = udp[7] = 0;
	sum = sum16(ip + 12, 8, 0); /* source and destination address */
	sum += IPPROTO_UDP + (uint32_t)udp_len;
	sum = sum16(udp, udp_len, sum);
	check = fold(sum);
	if (check == 0)
		check = 0xffff; /* 0 means "no checksum" */
	udp[6] = (unsigned char)(check >> 8);
	udp[7] = (unsigned char)(check & 0xff);

	/* The IPv4 header did not change, but a rewriter that does must redo this. */
	ip[10] = ip[11] = 0;
	check = fold(sum16(ip, ihl, 0));
	ip[10] = (unsigned char)(check >> 8);
	ip[11] = (unsigned char)(check & 0xff);
	return 1;
}

int main(int argc, char **argv)
{
	static unsigned char buf[BUFSIZE];
	unsigned long limit = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	unsigned long rewritten = 0;
	struct ipq_handle *h = ipq_create_handle(0, NFPROTO_IPV4);

	if (h == NULL || ipq_set_mode(h, IPQ_COPY_PACKET, 0) < 0) {
		ipq_perror("rewrite");
		ipq_destroy_handle(h);
		return 1;
	}
	while (limit == 0 || rewritten < limit) {
		ssize_t status = ipq_read(h, buf, BUFSIZE, 1000000);
		ipq_packet_msg_t *m;
		int changed;

		if (status < 0) {
			ipq_perror("rewrite");
			break;
		}
		if (status == 0 || ipq_message_type(buf) != IPQM_PACKET)
			continue;
		m = ipq_get_packet(buf);
		changed = rewrite_udp(m->payload, m->data_len);
		if (ipq_set_verdict(h, m->packet_id, NF_ACCEPT, changed ? m->data_len : 0,
				    changed ? m->payload : NULL) < 0) {
			ipq_perror("rewrite");
			break;
		}
		if (changed) {
			rewritten++;
			printf("rewrote packet %lu (%lu bytes)\n", m->packet_id,
			       (unsigned long)m->data_len);
			fflush(stdout);
		}
	}
	ipq_destroy_handle(h);
	return limit != 0 && rewritten == limit ? 0 : 1;
}
