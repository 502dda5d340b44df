// Helpers for the kernel tests: a fresh network namespace per test, loopback
// up, iptables NFQUEUE rules, UDP traffic on 127.0.0.1.
#pragma once

#include <cstdint>
#include <string>

namespace verdictd::queueio::testing {

// Empty when the kernel tests can run; otherwise why not (for GTEST_SKIP).
std::string KernelTestsUnavailable();

// Moves this (single-threaded) process into a new network namespace with
// loopback up. Returns an error text, empty on success.
std::string EnterFreshNetns();

// Runs a shell command; returns its exit status.
int Run(const std::string& command);

// A UDP socket bound to 127.0.0.1:port, non-blocking.
int UdpReceiver(std::uint16_t port);
// Sends `count` datagrams of `size` bytes to 127.0.0.1:port.
void SendUdp(std::uint16_t port, int count, std::size_t size);
// Counts datagrams waiting on `fd` (drains them), waiting up to `wait_ms` for the first.
int DrainUdp(int fd, int wait_ms);

}  // namespace verdictd::queueio::testing
