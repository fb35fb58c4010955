#include <hio/common/connection_limits.hpp>

#include <cassert>

namespace hio {

connection_limits::verdict connection_limits::admit(const std::string& peer) {
  std::lock_guard lock(mutex_);
  if (options_.total != 0 && open_ >= options_.total) {
    ++refused_;
    return verdict::port_full;
  }
  auto it = by_peer_.find(peer);
  if (options_.per_peer != 0 && it != by_peer_.end() && it->second >= options_.per_peer) {
    ++refused_;
    return verdict::peer_full;
  }
  if (it == by_peer_.end()) it = by_peer_.emplace(peer, 0).first;
  ++it->second;
  ++open_;
  return verdict::admitted;
}

void connection_limits::release(const std::string& peer) {
  std::lock_guard lock(mutex_);
  auto it = by_peer_.find(peer);
  assert(it != by_peer_.end() && it->second > 0 && open_ > 0);
  if (it == by_peer_.end()) return;
  if (--it->second == 0) by_peer_.erase(it);
  --open_;
}

std::size_t connection_limits::open() const {
  std::lock_guard lock(mutex_);
  return open_;
}

std::size_t connection_limits::open_from(const std::string& peer) const {
  std::lock_guard lock(mutex_);
  const auto it = by_peer_.find(peer);
  return it == by_peer_.end() ? 0 : it->second;
}

std::uint64_t connection_limits::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

}  // namespace hio
