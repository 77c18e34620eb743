//! A map whose entries expire: answers that may go stale (who a Slack user is, which groups
//! they are in) are kept for a bounded time, so that a change (a user added to a deny group)
//! takes effect within that time. The clock is passed in.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache whose entries live `ttl`; a zero `ttl` keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value stored for `key` less than `ttl` before `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(at, _)| now.saturating_duration_since(*at) < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Stores `value` as of `now`; expired entries go at the same time, so the map stays as
    /// small as the set of keys seen within `ttl`.
    pub fn insert(&self, key: K, value: V, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("cache lock");
        entries.retain(|_, (at, _)| now.saturating_duration_since(*at) < self.ttl);
        entries.insert(key, (now, value));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let c = TtlCache::new(Duration::from_secs(300));
        c.insert("alice", 1, t0);
        assert_eq!(c.get(&"alice", at(299)), Some(1));
        assert_eq!(c.get(&"alice", at(300)), None, "stale after the ttl");
        c.insert("bob", 2, at(400));
        assert_eq!(c.len(), 1, "the expired entry went");
        let none = TtlCache::new(Duration::ZERO);
        none.insert("alice", 1, t0);
        assert_eq!(none.get(&"alice", t0), None, "a zero ttl keeps nothing");
    }
}
