/*
 * dropper: gives every queued packet NF_DROP and says which it dropped.
 *
 *   iptables-legacy -A INPUT -p icmp -j QUEUE
 *   dropper [COUNT]      # stop after COUNT packets (default: never)
 *
 * Waits at most one second per ipq_read(), so it notices when it is done.
 */
#include <libipq.h>
#include <stdio.h>
#include <stdlib.h>

#define BUFSIZE 2048

int main(int argc, char **argv)
{
	unsigned char buf[BUFSIZE];
	unsigned long limit = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	unsigned long dropped = 0;
	struct ipq_handle *h = ipq_create_handle(0, NFPROTO_IPV4);

	if (h == NULL || ipq_set_mode(h, IPQ_COPY_META, 0) < 0) {
		ipq_perror("dropper");
		ipq_destroy_handle(h);
		return 1;
	}
	while (limit == 0 || dropped < limit) {
		ssize_t status = ipq_read(h, buf, BUFSIZE, 1000000);
		if (status < 0) {
			ipq_perror("dropper");
			break;
		}
		if (status == 0)
			continue; /* timeout */
		if (ipq_message_type(buf) == NLMSG_ERROR) {
			fprintf(stderr, "dropper: error message %d\n", ipq_get_msgerr(buf));
			continue;
		}
		if (ipq_message_type(buf) == IPQM_PACKET) {
			ipq_packet_msg_t *m = ipq_get_packet(buf);
			if (ipq_set_verdict(h, m->packet_id, NF_DROP, 0, NULL) < 0) {
				ipq_perror("dropper");
				break;
			}
			dropped++;
			printf("dropped packet %lu (in %s, out %s, hook %u)\n", m->packet_id,
			       m->indev_name[0] ? m->indev_name : "-",
			       m->outdev_name[0] ? m->outdev_name : "-", m->hook);
			fflush(stdout);
		}
	}
	ipq_destroy_handle(h);
	return limit != 0 && dropped == limit ? 0 : 1;
}
