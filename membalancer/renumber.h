// A thread other than the leader that execs takes the leader's id (and the
// leader is gone): per-thread state kept by id follows it to the new id.
#pragma once

#include <utility>

namespace mb {

// The entry of `from` becomes the entry of `to`, replacing what was kept for
// `to`; nothing kept for `from`: only `to`'s goes.
template <class Map>
void renumber_key(Map& m, const typename Map::key_type& from, const typename Map::key_type& to) {
  if (from == to) return;
  m.erase(to);
  auto entry = m.extract(from);
  if (entry.empty()) return;
  entry.key() = to;
  m.insert(std::move(entry));
}

}  // namespace mb
