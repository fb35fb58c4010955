#include <hio/common/receiver_session.hpp>

#include <hio/common/clock.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/json.hpp>
#include <hio/common/log.hpp>

#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <iterator>
#include <memory>
#include <type_traits>

namespace hio {

namespace {

// Appends one answer frame (header, then its text) to `out`.
void append_frame(std::string& out, const wire::frame_header& h, std::string_view text = {}) {
  const auto bytes = wire::encode(h);
  out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  out += text;
}

std::string frame_bytes(const wire::frame_header& h, std::string_view text = {}) {
  std::string out;
  append_frame(out, h, text);
  return out;
}

void append_acks(std::string& out, const std::vector<ack>& acks) {
  for (const auto& a : acks) append_frame(out, wire::make_ack(a.tuple_id, a.status, a.reason.size()), a.reason);
}

// Calls into the handler, turning a thrown exception into a fault: a handler's bug must end one
// session, not the receiver's loop.
template <class F>
auto guarded(std::uint64_t tuple_id, const char* what, F&& f)
    -> session_result<typename std::invoke_result_t<F>::value_type> {
  try {
    auto r = f();
    if (!r) return fault_from(r.error(), tuple_id);
    if constexpr (std::is_void_v<typename decltype(r)::value_type>) return {};
    else return std::move(*r);
  } catch (const std::exception& e) {
    return session_fault{tuple_id, wire::error_code::internal, std::string(what) + " failed: " + e.what()};
  } catch (...) {
    return session_fault{tuple_id, wire::error_code::internal, std::string(what) + " failed"};
  }
}

}  // namespace

session_fault fault_from(const error& e, std::uint64_t tuple_id) {
  const bool wire_code = e.code >= static_cast<int>(wire::error_code::bad_magic) &&
                         e.code <= static_cast<int>(wire::error_code::bad_codec);
  return {tuple_id, wire_code ? static_cast<wire::error_code>(e.code) : wire::error_code::internal, e.message};
}

receiver_session::receiver_session(const receiver_options& options, tuple_handler& handler, receiver_stats& stats,
                                   std::string peer)
    : options_(options), handler_(handler), stats_(stats), peer_(std::move(peer)) {}

void receiver_session::end() noexcept {
  if (!lease_ || ended_) return;
  ended_ = true;
  try {
    handler_.end_session(*lease_, clean_);
  } catch (const std::exception& e) {
    spdlog::error("receiver {}: ending the session from {} failed: {}", options_.target, peer_, e.what());
  } catch (...) {
    spdlog::error("receiver {}: ending the session from {} failed", options_.target, peer_);
  }
}

session_result<wire::frame_header> receiver_session::on_header(std::span<const std::byte, wire::header_size> bytes) {
  auto decoded = wire::decode(bytes, options_.max_tuple_bytes);
  if (!decoded) return session_fault{0, static_cast<wire::error_code>(decoded.error().code), decoded.error().message};
  const auto& h = *decoded;
  if (h.type == wire::frame_type::end) return h;
  if (h.type != wire::frame_type::data)
    return session_fault{h.tuple_id, wire::error_code::bad_frame, "sources may send only DATA and END frames"};
  if (!lease_) {
    if (auto v = verify_token(h.token, options_.secret, options_.target, unix_seconds()); !v)
      return session_fault{h.tuple_id, wire::error_code::bad_token, v.error().message};
    if (auto b = guarded(h.tuple_id, "beginning the session", [&] { return handler_.begin_session(h.token, peer_); });
        !b)
      return b.error();
    lease_ = h.token;
    ++stats_.sessions;
  } else if (!(h.token == *lease_)) {
    return session_fault{h.tuple_id, wire::error_code::bad_token, "a session must use one lease token"};
  }
  if (!lease_->covers(h.tuple_id) || (any_tuple_ && h.tuple_id <= last_id_))
    return session_fault{h.tuple_id, wire::error_code::bad_frame,
                         "tuple id " + std::to_string(h.tuple_id) + " is outside the lease or not increasing"};
  last_id_ = h.tuple_id;
  any_tuple_ = true;
  return h;
}

session_result<void> receiver_session::check_length(const wire::frame_header& h, std::uint64_t length) {
  if (length != h.metadata_length + h.payload_length)
    return session_fault{h.tuple_id, wire::error_code::bad_frame,
                         "body of " + std::to_string(length) + " bytes, the frame's lengths say " +
                             std::to_string(h.metadata_length + h.payload_length)};
  return {};
}

session_result<bool> receiver_session::on_body(const wire::frame_header& h, std::span<const std::byte> body) {
  if (auto l = check_length(h, body.size()); !l) return l.error();
  return on_body(h, body.first(h.metadata_length), body.subspan(h.metadata_length));
}

session_result<bool> receiver_session::on_body(const wire::frame_header& h, std::span<const std::byte> metadata_bytes,
                                               std::span<const std::byte> travelled) {
  if (metadata_bytes.size() != h.metadata_length || travelled.size() != h.payload_length)
    return session_fault{h.tuple_id, wire::error_code::bad_frame,
                         "metadata and payload of " + std::to_string(metadata_bytes.size()) + " and " +
                             std::to_string(travelled.size()) + " bytes, the frame's lengths say " +
                             std::to_string(h.metadata_length) + " and " + std::to_string(h.payload_length)};
  const std::string_view metadata(reinterpret_cast<const char*>(metadata_bytes.data()), metadata_bytes.size());
  std::span<const std::byte> tuple = travelled;
  if (h.payload_codec == wire::codec::zstd) {
    const auto size = ZSTD_getFrameContentSize(travelled.data(), travelled.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > options_.max_tuple_bytes)
      return session_fault{h.tuple_id, wire::error_code::bad_codec,
                           "zstd payload without a valid content size, or over the maximum tuple size"};
    // Not zero-filled: a small frame that declares a large content size costs only the pages the
    // decoder writes before it fails.
    if (decoded_capacity_ < size) {
      decoded_ = std::make_unique_for_overwrite<std::byte[]>(size);
      decoded_capacity_ = size;
    }
    const auto got = ZSTD_decompress(decoded_.get(), size, travelled.data(), travelled.size());
    if (ZSTD_isError(got) || got != size)
      return session_fault{h.tuple_id, wire::error_code::bad_codec, "zstd payload does not decode"};
    tuple = {decoded_.get(), static_cast<std::size_t>(size)};
  }
  if (const auto sum = xxh3_64(tuple); sum != h.xxh3)
    return session_fault{h.tuple_id, wire::error_code::checksum,
                         "XXH3-64 of tuple " + std::to_string(h.tuple_id) + " is " + to_hex16(sum) +
                             ", the header says " + to_hex16(h.xxh3)};
  if (auto m = check_metadata(metadata); !m) {
    // The tuple itself is refused (a FAILED ack with the reason, in order with the others); the session
    // goes on. Nothing downstream ever sees such metadata.
    ++stats_.rejected;
    static log_limiter limit;
    log_limited(limit, spdlog::level::info, "receiver {}: tuple {} from {} refused: {}", options_.target, h.tuple_id,
                peer_, log_escape(m.error().message));
    refused_.push_back({h.tuple_id, wire::ack_status::failed, "refused by the receiver: " + m.error().message});
    ++pending_;
    return pending_ >= options_.max_batch_tuples;
  }
  const received_tuple t{h.tuple_id, h.xxh3, metadata, tuple, h.payload_length};
  if (auto r = guarded(h.tuple_id, "handling the tuple", [&] { return handler_.on_tuple(*lease_, t); }); !r)
    return r.error();
  ++stats_.tuples;
  stats_.bytes += tuple.size();
  ++pending_;
  ++handed_;
  pending_bytes_ += tuple.size();
  return pending_ >= options_.max_batch_tuples || pending_bytes_ >= options_.max_batch_bytes;
}

void receiver_session::start_flush(flush_answer answer) {
  if (pending_ == 0) return answer(std::string());
  pending_ = 0;
  pending_bytes_ = 0;
  // Both lists follow the tuples' order; acks go out in that order too.
  auto encode = [refused = std::exchange(refused_, {})](std::vector<ack> acks) mutable {
    std::string out;
    if (refused.empty()) {
      append_acks(out, acks);
      return out;
    }
    std::vector<ack> merged;
    merged.reserve(acks.size() + refused.size());
    std::merge(std::make_move_iterator(acks.begin()), std::make_move_iterator(acks.end()),
               std::make_move_iterator(refused.begin()), std::make_move_iterator(refused.end()),
               std::back_inserter(merged), [](const ack& a, const ack& b) { return a.tuple_id < b.tuple_id; });
    append_acks(out, merged);
    return out;
  };
  if (std::exchange(handed_, 0) == 0) return answer(encode({}));
  const std::uint64_t last = last_id_;
  // Shared so that a handler that throws after calling `done` cannot make the batch answer twice.
  struct once_answer {
    flush_answer f;
    std::atomic<bool> used{false};
  };
  auto once = std::make_shared<once_answer>();
  once->f = std::move(answer);
  auto reply = [once](session_result<std::string> r) {
    if (once->used.exchange(true)) return;
    once->f(std::move(r));
  };
  try {
    handler_.flush_async(*lease_, [reply, encode = std::move(encode), last](result<std::vector<ack>> r) mutable {
      if (!r) return reply(fault_from(r.error(), last));
      reply(encode(std::move(*r)));
    });
  } catch (const std::exception& e) {
    reply(session_fault{last, wire::error_code::internal, std::string("storing the batch failed: ") + e.what()});
  } catch (...) {
    reply(session_fault{last, wire::error_code::internal, "storing the batch failed"});
  }
}

std::string receiver_session::reject(const session_fault& f) {
  ++stats_.rejected;
  static log_limiter limit;
  log_limited(limit, spdlog::level::info, "receiver {}: {} from {}: {}", options_.target, wire::to_string(f.code),
              peer_, log_escape(f.message));
  return frame_bytes(wire::make_error(f.tuple_id, f.code, f.message.size()), f.message);
}

std::string receiver_session::end_frame() { return frame_bytes(wire::make_end()); }

}  // namespace hio
