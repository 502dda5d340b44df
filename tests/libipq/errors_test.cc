// The C API without a kernel: ip_queue's error texts, ipq_perror's format,
// argument checks, and the message accessors on crafted buffers.
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "libipq/libipq.h"

namespace {

TEST(Errors, texts_are_the_original_ones) {
  const char* expected[] = {
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
  for (int code = IPQ_ERR_NONE; code <= IPQ_MAXERR; ++code) {
    ipq_errno = code;
    EXPECT_STREQ(ipq_errstr(), expected[code]) << code;
  }
  ipq_errno = IPQ_MAXERR + 1;
  EXPECT_STREQ(ipq_errstr(), "Implementation error");
  ipq_errno = -3;
  EXPECT_STREQ(ipq_errstr(), "Implementation error");
}

TEST(Errors, unknown_protocol_is_refused) {
  EXPECT_EQ(ipq_create_handle(0, 99), nullptr);
  EXPECT_EQ(ipq_errno, IPQ_ERR_PROTOCOL);
  EXPECT_STREQ(ipq_errstr(), "Invalid protocol specified");
}

TEST(Errors, perror_prints_prefix_text_errno_and_the_detail) {
  EXPECT_EQ(ipq_create_handle(0, 99), nullptr);
  testing::internal::CaptureStderr();
  ipq_perror("prog");
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.substr(0, out.find('\n') + 1), std::string("prog: Invalid protocol specified: ") +
                                                   std::strerror(EPROTONOSUPPORT) + "\n");
  EXPECT_NE(out.find("prog: protocol 99 is not supported; use PF_INET"), std::string::npos) << out;
  errno = 0;
  ipq_errno = IPQ_ERR_NONE;
  testing::internal::CaptureStderr();
  ipq_perror(nullptr);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "ERROR\n");
}

TEST(Errors, invalid_environment_fails_create_with_the_variable_named) {
  setenv("LIBIPQ_QUEUE", "seven", 1);
  EXPECT_EQ(ipq_create_handle(0, NFPROTO_IPV4), nullptr);
  unsetenv("LIBIPQ_QUEUE");
  EXPECT_EQ(ipq_errno, IPQ_ERR_HANDLE);
  EXPECT_EQ(errno, EINVAL);
  testing::internal::CaptureStderr();
  ipq_perror("p");
  EXPECT_NE(testing::internal::GetCapturedStderr().find("LIBIPQ_QUEUE='seven'"), std::string::npos);
}

TEST(Errors, calls_on_an_unbound_handle) {
  struct ipq_handle* h = ipq_create_handle(0, NFPROTO_IPV6);
  ASSERT_NE(h, nullptr);
  unsigned char buf[256];
  EXPECT_EQ(ipq_read(h, buf, 8, 0), -1);  // checked first, as the original did
  EXPECT_EQ(ipq_errno, IPQ_ERR_RECVBUF);
  EXPECT_STREQ(ipq_errstr(), "Receive buffer size invalid");
  EXPECT_EQ(ipq_read(h, buf, sizeof buf, 0), -1);
  EXPECT_EQ(ipq_errno, IPQ_ERR_IMPL);
  EXPECT_EQ(ipq_set_mode(h, 7, 0), -1);
  EXPECT_EQ(ipq_errno, IPQ_ERR_SUPP);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(ipq_set_verdict(h, 1, 77, 0, nullptr), -1);
  EXPECT_EQ(ipq_errno, IPQ_ERR_SUPP);
  EXPECT_EQ(ipq_set_verdict(h, 1ul << 40, NF_ACCEPT, 0, nullptr), -1);
  EXPECT_EQ(ipq_errno, IPQ_ERR_SUPP);
  EXPECT_EQ(ipq_set_verdict(h, 1, NF_ACCEPT, 70000, buf), -1);
  EXPECT_EQ(ipq_errno, IPQ_ERR_SUPP);
  EXPECT_EQ(ipq_set_verdict(h, 1, NF_ACCEPT, 0, nullptr), -1);
  EXPECT_EQ(ipq_errno, IPQ_ERR_IMPL);
  EXPECT_EQ(ipq_set_mode(h, IPQ_COPY_NONE, 0), 1);  // nothing bound: nothing to unbind
  EXPECT_EQ(ipq_ctl(h, 0), 1);
  EXPECT_EQ(ipq_destroy_handle(h), 0);
  EXPECT_EQ(ipq_destroy_handle(nullptr), 0);
}

TEST(Errors, null_handle_is_an_error_not_a_crash) {
  unsigned char buf[64];
  EXPECT_EQ(ipq_read(nullptr, buf, sizeof buf, 0), -1);
  EXPECT_EQ(ipq_errno, IPQ_ERR_HANDLE);
  EXPECT_EQ(ipq_set_mode(nullptr, IPQ_COPY_PACKET, 0), -1);
  EXPECT_EQ(ipq_set_verdict(nullptr, 1, NF_ACCEPT, 0, nullptr), -1);
}

TEST(Messages, accessors_read_crafted_buffers) {
  alignas(8) unsigned char buf[128] = {};
  nlmsghdr header{};
  header.nlmsg_type = NLMSG_ERROR;
  header.nlmsg_len = NLMSG_LENGTH(sizeof(nlmsgerr));
  std::memcpy(buf, &header, sizeof header);
  const int error = -EBUSY;
  std::memcpy(buf + NLMSG_HDRLEN, &error, sizeof error);
  EXPECT_EQ(ipq_message_type(buf), NLMSG_ERROR);
  EXPECT_EQ(ipq_get_msgerr(buf), EBUSY);
  header.nlmsg_type = IPQM_PACKET;
  std::memcpy(buf, &header, sizeof header);
  EXPECT_EQ(ipq_message_type(buf), IPQM_PACKET);
  EXPECT_EQ(reinterpret_cast<unsigned char*>(ipq_get_packet(buf)), buf + NLMSG_HDRLEN);
}

TEST(Header, layout_keeps_the_old_field_order) {
  EXPECT_EQ(offsetof(ipq_packet_msg_t, packet_id), 0u);
  EXPECT_LT(offsetof(ipq_packet_msg_t, mark), offsetof(ipq_packet_msg_t, timestamp_sec));
  EXPECT_LT(offsetof(ipq_packet_msg_t, hook), offsetof(ipq_packet_msg_t, indev_name));
  EXPECT_LT(offsetof(ipq_packet_msg_t, outdev_name), offsetof(ipq_packet_msg_t, hw_protocol));
  EXPECT_LT(offsetof(ipq_packet_msg_t, hw_addr), offsetof(ipq_packet_msg_t, data_len));
  EXPECT_EQ(offsetof(ipq_packet_msg_t, payload),
            offsetof(ipq_packet_msg_t, data_len) + sizeof(size_t));
  EXPECT_EQ(sizeof(ipq_id_t), sizeof(unsigned long));
  EXPECT_GE(LIBIPQ_VERSION_MAJOR, 1);
}

}  // namespace
