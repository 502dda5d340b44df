/*
 * ipq_tool: a libipq program for the kernel tests (tests/integration/
 * test_libipq.py). It uses only the public API, prints one JSON object per
 * line on stdout, and exits with a status that names the failing call.
 *
 *   ipq_tool [--family 4|6] [--mode none|meta|packet] [--range N] [--buf N]
 *            [--timeout US] [--verdict accept|drop] [--count N] [--reads N]
 *            [--hold N] [--verdict-thread]
 *
 * Prints {"ready": ...} once the queue is bound; {"packet": ...} per packet;
 * {"timeout": ...} per ipq_read() that returned 0; {"error": CALL, ...} and
 * the ipq_perror() text on stderr for a failed call. Stops after --count
 * packets or --reads calls of ipq_read(). --hold N keeps N packets
 * undecided, then accepts all but the oldest, in order, and drops the
 * oldest last: consecutive accepts that became one batch verdict covering
 * the oldest would let it through. --verdict-thread gives the verdicts from
 * a second thread while the first blocks in ipq_read(). Exit: 0 done, 2 usage,
 * 3 ipq_create_handle, 4 ipq_set_mode, 5 ipq_read, 6 ipq_set_verdict.
 */
#include <libipq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void error_line(const char *call)
{
	int saved = errno;
	printf("{\"error\": \"%s\", \"ipq_errno\": %d, \"errstr\": \"%s\", \"errno\": %d}\n", call,
	       ipq_errno, ipq_errstr(), saved);
	fflush(stdout);
	errno = saved;
	ipq_perror("ipq_tool");
}

/* Packet ids from the reader to the verdict thread. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	unsigned long ids[4096];
	long head, tail, remaining;
	struct ipq_handle *h;
	unsigned int verdict;
	int failed;
} ring = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0, NULL, 0, 0};

static void *verdict_thread(void *arg)
{
	(void)arg;
	for (;;) {
		unsigned long id;
		pthread_mutex_lock(&ring.lock);
		while (ring.head == ring.tail && ring.remaining > 0)
			pthread_cond_wait(&ring.ready, &ring.lock);
		if (ring.head == ring.tail) {
			pthread_mutex_unlock(&ring.lock);
			return NULL;
		}
		id = ring.ids[ring.tail++ % 4096];
		ring.remaining--;
		pthread_mutex_unlock(&ring.lock);
		if (ipq_set_verdict(ring.h, id, ring.verdict, 0, NULL) < 0) {
			error_line("ipq_set_verdict");
			ring.failed = 1;
		}
	}
}

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	unsigned int family = NFPROTO_IPV4;
	int mode = IPQ_COPY_PACKET;
	size_t range = 2048;
	size_t buf_len = 70000;
	int timeout = 0;
	unsigned int verdict = NF_ACCEPT;
	long count = -1, reads = -1, packets = 0, calls = 0, hold = 0, held = 0;
	int threaded = 0;
	pthread_t thread;
	unsigned long held_ids[1024];
	unsigned char *buf;
	struct ipq_handle *h;
	int i;

	for (i = 1; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(k, "--verdict-thread")) {
			threaded = 1;
			i--;
		} else if (!strcmp(k, "--family"))
			family = !strcmp(v, "6") ? NFPROTO_IPV6 : !strcmp(v, "4") ? NFPROTO_IPV4 : (unsigned)atoi(v);
		else if (!strcmp(k, "--mode"))
			mode = !strcmp(v, "none") ? IPQ_COPY_NONE : !strcmp(v, "meta") ? IPQ_COPY_META : !strcmp(v, "packet") ? IPQ_COPY_PACKET : atoi(v);
		else if (!strcmp(k, "--range"))
			range = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--buf"))
			buf_len = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--timeout"))
			timeout = atoi(v);
		else if (!strcmp(k, "--verdict"))
			verdict = !strcmp(v, "drop") ? NF_DROP : NF_ACCEPT;
		else if (!strcmp(k, "--count"))
			count = atol(v);
		else if (!strcmp(k, "--reads"))
			reads = atol(v);
		else if (!strcmp(k, "--hold"))
			hold = atol(v) > 1024 ? 1024 : atol(v);
		else {
			fprintf(stderr, "ipq_tool: unknown option %s\n", k);
			return 2;
		}
	}
	buf = malloc(buf_len ? buf_len : 1);
	h = ipq_create_handle(0, family);
	if (h == NULL) {
		error_line("ipq_create_handle");
		free(buf);
		return 3;
	}
	if (ipq_set_mode(h, (unsigned char)mode, range) < 0) {
		error_line("ipq_set_mode");
		ipq_destroy_handle(h);
		free(buf);
		return 4;
	}
	if (threaded) {
		if (count < 0)
			count = 1000;
		ring.h = h;
		ring.verdict = verdict;
		ring.remaining = count;
		pthread_create(&thread, NULL, verdict_thread, NULL);
	}
	printf("{\"ready\": true}\n");
	fflush(stdout);
	while ((count < 0 || packets < count) && (reads < 0 || calls < reads)) {
		long long start = now_us();
		ssize_t n = ipq_read(h, buf, buf_len, timeout);
		long long elapsed = now_us() - start;
		calls++;
		if (n < 0) {
			error_line("ipq_read");
			ipq_destroy_handle(h);
			free(buf);
			return 5;
		}
		if (n == 0) {
			printf("{\"timeout\": true, \"ipq_errno\": %d, \"errstr\": \"%s\", \"elapsed_us\": %lld}\n",
			       ipq_errno, ipq_errstr(), elapsed);
			fflush(stdout);
			continue;
		}
		if (ipq_message_type(buf) == NLMSG_ERROR) {
			printf("{\"nlmsg_error\": %d}\n", ipq_get_msgerr(buf));
			fflush(stdout);
			continue;
		}
		if (ipq_message_type(buf) == IPQM_PACKET) {
			ipq_packet_msg_t *m = ipq_get_packet(buf);
			char hw[3 * 8 + 1] = "";
			int j;
			for (j = 0; j < m->hw_addrlen && j < 8; j++)
				sprintf(hw + strlen(hw), "%s%02x", j ? ":" : "", m->hw_addr[j]);
			printf("{\"packet\": %lu, \"length\": %ld, \"data_len\": %lu, \"hook\": %u, "
			       "\"indev\": \"%s\", \"outdev\": \"%s\", \"hw_protocol\": %u, "
			       "\"hw_type\": %u, \"hw_addrlen\": %u, \"hw_addr\": \"%s\", "
			       "\"mark\": %lu, \"timestamp_sec\": %ld, \"version\": %d}\n",
			       m->packet_id, (long)n, (unsigned long)m->data_len, m->hook, m->indev_name,
			       m->outdev_name, m->hw_protocol, m->hw_type, m->hw_addrlen, hw, m->mark,
			       m->timestamp_sec, m->data_len ? m->payload[0] >> 4 : -1);
			fflush(stdout);
			if (threaded) {
				pthread_mutex_lock(&ring.lock);
				ring.ids[ring.head++ % 4096] = m->packet_id;
				pthread_cond_signal(&ring.ready);
				pthread_mutex_unlock(&ring.lock);
				packets++;
				continue;
			}
			if (hold > 0) {
				held_ids[held++] = m->packet_id;
				packets++;
				if (held < hold)
					continue;
				for (j = 1; j <= held; j++) {
					unsigned long id = held_ids[j % held];
					if (ipq_set_verdict(h, id, j == held ? NF_DROP : NF_ACCEPT, 0, NULL) < 0) {
						error_line("ipq_set_verdict");
						ipq_destroy_handle(h);
						free(buf);
						return 6;
					}
				}
				held = 0;
				continue;
			}
			if (ipq_set_verdict(h, m->packet_id, verdict, 0, NULL) < 0) {
				error_line("ipq_set_verdict");
				ipq_destroy_handle(h);
				free(buf);
				return 6;
			}
			packets++;
		}
	}
	if (threaded) {
		pthread_join(thread, NULL);
		if (ring.failed) {
			ipq_destroy_handle(h);
			free(buf);
			return 6;
		}
	}
	ipq_destroy_handle(h);
	free(buf);
	return 0;
}
