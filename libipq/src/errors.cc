#include "errors.hh"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "export.hh"
#include "libipq/libipq.h"

// The old global, kept for programs that declare it themselves.
LIBIPQ_EXPORT int ipq_errno = IPQ_ERR_NONE;

namespace verdictd::libipq {
namespace {

// The texts of iptables' libipq, word for word: programs and scripts match them.
constexpr const char* kErrorTexts[] = {
    "Unknown error",
    "Implementation error",
    "Unable to create netlink handle",
    "Unable to create netlink socket",
    "Unable to bind netlink socket",
    "Unable to allocate buffer",
    "Failed to receive netlink message",
    "Received EOF on netlink socket",
    "Invalid peer address length",
    "Sent message truncated",
    "Received message truncated",
    "Received error from netlink",
    "Failed to send netlink message",
    "Operation not supported",
    "Receive buffer size invalid",
    "Timeout",
    "Invalid protocol specified",
};
static_assert(sizeof kErrorTexts / sizeof kErrorTexts[0] == IPQ_MAXERR + 1);

char g_detail[512];

}  // namespace

int SetError(int code, int sys_errno, std::string_view detail) noexcept {
  ipq_errno = code;
  const std::size_t n = detail.size() < sizeof g_detail ? detail.size() : sizeof g_detail - 1;
  if (n != 0) std::memcpy(g_detail, detail.data(), n);
  g_detail[n] = '\0';
  if (sys_errno != 0) errno = sys_errno;
  return -1;
}

const char* ErrorDetail() noexcept { return g_detail; }

const char* ErrorText(int code) noexcept {
  if (code < 0 || code > IPQ_MAXERR) code = IPQ_ERR_IMPL;
  return kErrorTexts[code];
}

}  // namespace verdictd::libipq

extern "C" {

LIBIPQ_EXPORT char* ipq_errstr(void) {
  // The old signature returns char*; the texts are never written to.
  return const_cast<char*>(verdictd::libipq::ErrorText(ipq_errno));
}

LIBIPQ_EXPORT void ipq_perror(const char* s) {
  const int saved = errno;
  std::fputs(s != nullptr ? s : "ERROR", stderr);
  if (ipq_errno != 0) std::fprintf(stderr, ": %s", ipq_errstr());
  if (saved != 0) std::fprintf(stderr, ": %s", std::strerror(saved));
  std::fputc('\n', stderr);
  const char* detail = verdictd::libipq::ErrorDetail();
  if (detail[0] != '\0' && ipq_errno != 0) {
    std::fprintf(stderr, "%s: %s\n", s != nullptr ? s : "ERROR", detail);
  }
  errno = saved;
}

}  // extern "C"
