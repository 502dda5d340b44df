// The C API of libipq.h: argument checks and exception walls around Handle.
// No C++ exception leaves this file.
#include <sys/socket.h>

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "errors.hh"
#include "export.hh"
#include "handle.hh"
#include "libipq/libipq.h"
#include "settings.hh"

namespace {

using verdictd::libipq::SetError;

verdictd::libipq::Handle* Impl(const struct ipq_handle* h) {
  // The old API passes handles as const; the handle is the library's own
  // mutable object, allocated by ipq_create_handle().
  return &const_cast<struct ipq_handle*>(h)->impl;
}

const char* Getenv(const char* name) { return std::getenv(name); }

}  // namespace

extern "C" {

LIBIPQ_EXPORT struct ipq_handle* ipq_create_handle(uint32_t flags, uint32_t protocol) {
  (void)flags;  // unused, as it always was
  std::uint8_t family = 0;
  if (protocol == NFPROTO_IPV4) {
    family = AF_INET;  // PF_INET is the same number
  } else if (protocol == NFPROTO_IPV6) {
    family = AF_INET6;
  } else {
    SetError(IPQ_ERR_PROTOCOL, EPROTONOSUPPORT,
             "protocol " + std::to_string(protocol) +
                 " is not supported; use PF_INET (NFPROTO_IPV4) or PF_INET6 (NFPROTO_IPV6)");
    return nullptr;
  }
  try {
    verdictd::libipq::Settings settings;
    const std::string problem = verdictd::libipq::ReadSettings(Getenv, settings);
    if (!problem.empty()) {
      SetError(IPQ_ERR_HANDLE, EINVAL, problem);
      return nullptr;
    }
    return new ipq_handle(family, settings);
  } catch (...) {
    SetError(IPQ_ERR_HANDLE, ENOMEM, "out of memory for the handle");
    return nullptr;
  }
}

LIBIPQ_EXPORT int ipq_destroy_handle(struct ipq_handle* h) {
  delete h;  // sends pending verdicts, unbinds
  return 0;
}

LIBIPQ_EXPORT int ipq_set_mode(const struct ipq_handle* h, uint8_t mode, size_t len) {
  if (h == nullptr) return SetError(IPQ_ERR_HANDLE, EINVAL, "ipq_set_mode: the handle is NULL");
  return Impl(h)->SetMode(mode, len);
}

LIBIPQ_EXPORT ssize_t ipq_read(const struct ipq_handle* h, unsigned char* buf, size_t len,
                               int timeout) {
  if (h == nullptr) return SetError(IPQ_ERR_HANDLE, EINVAL, "ipq_read: the handle is NULL");
  if (buf == nullptr) return SetError(IPQ_ERR_RECVBUF, EINVAL, "ipq_read: the buffer is NULL");
  return Impl(h)->Read({buf, len}, timeout);
}

LIBIPQ_EXPORT int ipq_message_type(const unsigned char* buf) {
  nlmsghdr header;
  std::memcpy(&header, buf, sizeof header);
  return header.nlmsg_type;
}

LIBIPQ_EXPORT int ipq_get_msgerr(const unsigned char* buf) {
  int error;
  std::memcpy(&error, buf + NLMSG_HDRLEN, sizeof error);
  return -error;
}

LIBIPQ_EXPORT ipq_packet_msg_t* ipq_get_packet(const unsigned char* buf) {
  return reinterpret_cast<ipq_packet_msg_t*>(const_cast<unsigned char*>(buf) + NLMSG_HDRLEN);
}

LIBIPQ_EXPORT int ipq_set_verdict(const struct ipq_handle* h, ipq_id_t id, unsigned int verdict,
                                  size_t data_len, unsigned char* buf) {
  if (h == nullptr) return SetError(IPQ_ERR_HANDLE, EINVAL, "ipq_set_verdict: the handle is NULL");
  const std::span<const std::uint8_t> data = (data_len > 0 && buf != nullptr)
                                                 ? std::span<const std::uint8_t>(buf, data_len)
                                                 : std::span<const std::uint8_t>();
  return Impl(h)->SetVerdict(id, verdict, data);
}

LIBIPQ_EXPORT int ipq_ctl(const struct ipq_handle* h, int request, ...) {
  (void)h;
  (void)request;
  return 1;
}

}  // extern "C"
