// The seam through which a reload adds and removes queues while verdictd
// runs (Service implements it). A reload calls Prepare() before it builds the
// new policy, then Commit() after publishing it, or Abort() if anything in
// between failed. Control plane only: may allocate, lock and throw.
#pragma once

#include <string>

#include "verdictd/config/config.h"

namespace verdictd::service {

class QueueChanger {
 public:
  virtual ~QueueChanger() = default;

  // Checks that the queues of `next` can replace the running ones live and
  // binds the queues it adds (their workers do not run yet). Throws
  // std::exception with a one-line message when they cannot (a running
  // queue's settings changed, a queue is held elsewhere, ...); nothing has
  // changed then. Returns a summary for the log ("adds queues 4..5; removes
  // queue 3"), empty when the queues stay as they are.
  virtual std::string Prepare(const config::Config& next) = 0;
  // Starts the workers of the added queues and drains and stops the removed
  // ones; the queues that stay are not touched. Returns "" or a warning.
  // Throws std::runtime_error naming the queues when an added queue could
  // not start (it is unbound again; everything else was applied) or when
  // the service stopped since Prepare() (nothing was started; the prepared
  // queues are unbound).
  virtual std::string Commit() = 0;
  // Unbinds what Prepare() bound.
  virtual void Abort() noexcept = 0;
  // How many worker slots the next policy needs deciders for (after Prepare()).
  virtual std::size_t slot_count() const = 0;
};

}  // namespace verdictd::service
