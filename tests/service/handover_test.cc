// The hand-over's wire format and transport (handover.h), and what
// QueueSocket::Adopt refuses. No kernel queue is needed: the descriptors are
// pipes and plain sockets.
#include "verdictd/service/handover.h"

#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

#include "verdictd/queueio/queue_socket.h"

namespace verdictd::service {
namespace {

ino_t Inode(int fd) {
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0);
  return st.st_ino;
}

TEST(HandOver, ManifestRoundTrip) {
  HandOverManifest manifest;
  manifest.queues.push_back(HandedQueue{7, 10, 1234, 0x4, true});
  manifest.queues.push_back(HandedQueue{8, 11, 99, 0, false});
  manifest.control_fd = 12;
  const std::string text = EncodeManifest(manifest);
  EXPECT_EQ(text,
            "verdictd-handover 1\nqueue 7 portid 1234 flags 4 conntrack 1\n"
            "queue 8 portid 99 flags 0 conntrack 0\ncontrol\nend\n");
  const HandOverManifest back = DecodeManifest(text, {20, 21, 22});
  ASSERT_EQ(back.queues.size(), 2u);
  EXPECT_EQ(back.queues[0].queue, 7);
  EXPECT_EQ(back.queues[0].fd, 20);
  EXPECT_EQ(back.queues[0].portid, 1234u);
  EXPECT_EQ(back.queues[0].flags, 4u);
  EXPECT_TRUE(back.queues[0].conntrack_supported);
  EXPECT_EQ(back.queues[1].fd, 21);
  EXPECT_FALSE(back.queues[1].conntrack_supported);
  EXPECT_EQ(back.control_fd, 22);
}

TEST(HandOver, ManifestRefusesWhatDoesNotMatch) {
  auto message = [](std::string_view text, std::vector<int> fds) -> std::string {
    try {
      DecodeManifest(text, fds);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message("verdictd-handover 2\nend\n", {}).find("expected \"verdictd-handover 1\""),
            std::string::npos);
  EXPECT_NE(message("verdictd-handover 1\nqueue 1 portid 2 flags 0 conntrack 0\nend\n", {})
                .find("more entries than the 0 descriptor(s)"),
            std::string::npos);
  EXPECT_NE(message("verdictd-handover 1\nend\n", {5}).find("1 descriptors received for 0"),
            std::string::npos);
  EXPECT_NE(message("verdictd-handover 1\nqueue x\nend\n", {5}).find("cannot read the line"),
            std::string::npos);
  EXPECT_NE(message("verdictd-handover 1\ncontrol\n", {5}).find("no \"end\" line"),
            std::string::npos);
}

TEST(HandOver, DescriptorsTravelWithTheManifest) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  int pipe_a[2], pipe_b[2];
  ASSERT_EQ(pipe(pipe_a), 0);
  ASSERT_EQ(pipe(pipe_b), 0);
  HandOverManifest manifest;
  manifest.queues.push_back(HandedQueue{3, pipe_a[0], 42, 0, false});
  manifest.control_fd = pipe_b[0];
  ASSERT_EQ(SendManifest(pair[0], manifest), "");
  const HandOverManifest got = ReceiveManifest(pair[1], 1000);
  ASSERT_EQ(got.queues.size(), 1u);
  EXPECT_EQ(got.queues[0].portid, 42u);
  // Other descriptors, the same files.
  EXPECT_NE(got.queues[0].fd, pipe_a[0]);
  EXPECT_EQ(Inode(got.queues[0].fd), Inode(pipe_a[0]));
  EXPECT_EQ(Inode(got.control_fd), Inode(pipe_b[0]));
  for (int fd : {got.queues[0].fd, got.control_fd, pipe_a[0], pipe_a[1], pipe_b[0], pipe_b[1],
                 pair[0], pair[1]}) {
    close(fd);
  }
}

TEST(HandOver, HelloNamesDifferentQueues) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  const std::string hello = "verdictd-handover 1 queues 0,1\n";
  ASSERT_GT(send(pair[0], hello.data(), hello.size(), 0), 0);
  try {
    CheckHello(pair[1], {0, 1, 2}, 1000);
    ADD_FAILURE() << "different queues accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("(queues 0,1,2) differ from the running ones (queues 0,1)"),
              std::string::npos)
        << e.what();
  }
  close(pair[0]);
  close(pair[1]);
}

TEST(HandOver, FdStoreName) {
  EXPECT_EQ(FdStoreName(HandedQueue{9, 3, 4242, 8, true}), "queue-9-4242-8-1");
}

std::string AdoptError(int fd, std::uint32_t portid) {
  queueio::QueueOptions options;
  options.queue_num = 5;
  try {
    queueio::QueueSocket::Adopt(fd, portid, options, queueio::BindReport{});
  } catch (const queueio::QueueError& e) {
    return e.what();
  }
  return "";
}

TEST(HandOver, AdoptRefusesWhatIsNotTheBoundQueueSocket) {
  const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(udp, 0);
  EXPECT_NE(AdoptError(udp, 1).find("is not a netfilter netlink socket"), std::string::npos);
  close(udp);

  const int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  ASSERT_GE(nl, 0);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  ASSERT_EQ(bind(nl, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
  socklen_t size = sizeof local;
  ASSERT_EQ(getsockname(nl, reinterpret_cast<sockaddr*>(&local), &size), 0);
  const std::string wrong = AdoptError(nl, local.nl_pid + 1);
  EXPECT_NE(wrong.find("the old process said " + std::to_string(local.nl_pid + 1)),
            std::string::npos)
      << wrong;
  close(nl);

  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  EXPECT_NE(AdoptError(pipe_fds[0], 1).find("is not a socket"), std::string::npos);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

}  // namespace
}  // namespace verdictd::service
