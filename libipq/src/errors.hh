// ipq_errno and the details behind it. As in the original, one process-wide
// error: the last failing call of any handle sets it.
#pragma once

#include <string_view>

namespace verdictd::libipq {

// Sets ipq_errno to `code` and errno to `sys_errno` (0 leaves errno alone),
// and keeps `detail` (what failed, on what, what to do) for ipq_perror().
// Always returns -1, the failure value of most calls.
int SetError(int code, int sys_errno, std::string_view detail = {}) noexcept;

// The detail of the last SetError(), "" when it gave none.
const char* ErrorDetail() noexcept;

// The text of an IPQ_ERR_* code ("Implementation error" for an unknown one).
const char* ErrorText(int code) noexcept;

}  // namespace verdictd::libipq
