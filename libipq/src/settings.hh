// The LIBIPQ_* environment of a handle: a plain struct with named defaults,
// read once by ipq_create_handle() (see libipq.h for what each one does).
// Control plane: allocates; errors come back as text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace verdictd::libipq {

struct Settings {
  std::uint16_t queue_num = 0;                  // LIBIPQ_QUEUE: "-j QUEUE" feeds queue 0
  std::size_t receive_buffer_bytes = 8u << 20;  // LIBIPQ_RCVBUF
  std::uint32_t max_queue_length = 4096;        // LIBIPQ_QUEUE_MAXLEN
  bool fail_open = false;                       // LIBIPQ_FAIL_OPEN: ip_queue dropped
  std::size_t batch_size = 64;                  // LIBIPQ_BATCH
  // LIBIPQ_COALESCE_US: 2 ms gathers ~20 packets per wake-up at 10 kpps, which
  // is what it takes to halve nf-queue.c's CPU per packet (bench/README.md).
  std::uint32_t coalesce_us = 2000;
};

// Reads the variables through `lookup` (getenv, or a test's table) into
// `out`. Returns "" or one line naming the variable, its value and what it
// accepts; `out` is unchanged then.
using EnvLookup = const char* (*)(const char* name);
std::string ReadSettings(EnvLookup lookup, Settings& out);

}  // namespace verdictd::libipq
