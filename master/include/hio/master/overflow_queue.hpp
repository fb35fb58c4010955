#pragma once
// The master's overflow queue: tuples that arrived while no channel was free, kept in FIFO order until a
// channel takes them. Durable: every tuple is appended to a segment file and fdatasync'ed (sync()) before
// the source is told it is queued; consumed ids go to a log, so a restarted master resumes with exactly
// the tuples not yet stored. Payloads stay cached in memory up to `memory_bytes`; beyond that only the
// file holds them and dispatch reads them back.
//
// Thread-safe (one mutex). Entries handed out by take() are "in flight" until complete() or give_back().

#include <hio/common/error.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace hio::master {

struct queued_tuple {
  std::uint64_t tuple_id = 0;
  std::uint64_t xxh3 = 0;
  std::string metadata;
  std::shared_ptr<const std::vector<std::byte>> payload;  // filled by take()
};

struct queue_stats {
  std::uint64_t length = 0;        // tuples queued, including those in flight to a channel
  std::uint64_t bytes = 0;         // their payload bytes
  std::uint64_t memory_bytes = 0;  // payload bytes cached in memory
  std::uint64_t in_flight = 0;
  std::uint64_t enqueued_total = 0, completed_total = 0, corrupt_total = 0;
  std::uint64_t read_errors = 0;   // takes that stopped at a segment that could not be read (kept queued)
  std::uint64_t syncs = 0;         // fdatasyncs of appended tuples (sessions share them)
};

// How many queued tuples one dispatch session to a free channel should carry: the available backlog spread
// evenly over the free channels (a channel that took the whole queue would work through it alone while the
// others idle), at least 1 and at most `most`.
std::size_t dispatch_share(const queue_stats& q, std::size_t free_channels, std::size_t most);

class overflow_queue {
 public:
  struct options {
    std::filesystem::path dir;                      // segments and the consumed-id log
    std::uint64_t memory_bytes = 1ull << 30;        // payload bytes kept in memory
    std::uint64_t max_bytes = 64ull << 30;          // above this the queue is full (leases get 503)
    std::uint64_t segment_bytes = 256ull << 20;     // a new segment file starts past this size
  };

  // Replays the segments and the consumed log. Error when the directory is unusable.
  static result<std::unique_ptr<overflow_queue>> open(options o);
  ~overflow_queue();

  // Appends a tuple (not yet durable) and returns its arrival sequence number (increasing; the queue's
  // newest for a tuple id already queued, which is ignored: a source's retry).
  result<std::uint64_t> append(std::uint64_t tuple_id, std::uint64_t xxh3, std::string_view metadata,
                      std::span<const std::byte> payload);
  // Makes every append so far durable.
  result<void> sync();
  // The position sync_through() takes: every append so far.
  std::uint64_t written() const;
  // Makes every append before `position` (a written() value) durable. Several callers share one
  // fdatasync: one that finds a sync in progress waits for it, then syncs only if it is not covered;
  // appends go on meanwhile (the sync runs outside the queue's lock).
  result<void> sync_through(std::uint64_t position);

  // Up to `max_tuples` / `max_bytes` (at least one tuple) of the oldest entries not in flight, marked in
  // flight, payloads loaded. A tuple whose bytes on disk no longer match its XXH3 is dropped, counted
  // as corrupt and logged.
  std::vector<queued_tuple> take(std::size_t max_tuples, std::uint64_t max_bytes);
  // The tuples are stored by a channel: forget them (durably).
  result<void> complete(const std::vector<std::uint64_t>& tuple_ids);
  // The dispatch failed: the tuples go back to the front, in their original order.
  void give_back(const std::vector<std::uint64_t>& tuple_ids);

  // The arrival sequence number of the oldest tuple still queued (in flight counts); UINT64_MAX when
  // empty. A tuple appended with sequence s has left the queue once this is above s.
  std::uint64_t oldest_sequence() const;
  bool empty() const;            // nothing queued at all (in flight counts as queued)
  bool has_available() const;    // something queued and not in flight
  bool full() const;
  queue_stats stats() const;

 private:
  struct entry {
    std::uint64_t tuple_id;
    std::uint64_t xxh3;
    std::uint32_t segment;
    std::uint64_t offset;  // of the payload in the segment
    std::uint64_t length;
    std::string metadata;
    std::shared_ptr<const std::vector<std::byte>> cached;
    bool in_flight = false;
    std::uint64_t seq = 0;  // arrival order
  };
  explicit overflow_queue(options o);
  result<void> replay();
  result<void> open_segment(std::uint32_t number);
  void release_segments();
  std::filesystem::path segment_path(std::uint32_t n) const;

  options options_;
  mutable std::mutex mutex_;
  std::deque<entry> entries_;                       // FIFO; in-flight entries stay in place
  std::unordered_map<std::uint64_t, std::uint32_t> segment_of_;  // queued ids -> segment
  std::map<std::uint32_t, std::uint64_t> live_per_segment_;      // segment -> queued tuples in it
  std::set<std::uint32_t> on_disk_;                              // segment files that exist
  int segment_fd_ = -1;
  std::uint32_t segment_ = 0;
  std::uint64_t segment_size_ = 0;
  int consumed_fd_ = -1;
  std::uint64_t next_seq_ = 1;
  std::uint64_t synced_seq_ = 1;  // appends with a sequence number below it are durable
  bool syncing_ = false;           // an fdatasync runs outside the lock
  std::condition_variable synced_cv_;
  queue_stats stats_;
  std::chrono::steady_clock::time_point last_read_warning_{};  // read errors are logged once a second
};

}  // namespace hio::master
