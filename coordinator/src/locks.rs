//! Locks by key: one turn at a time per key (a project's deliveries, a mirror's fetches),
//! any number of keys at once. A key's entry lives only while someone holds or waits for
//! its lock, so the map holds the keys in use, not every key ever seen.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

pub struct KeyedLocks<K> {
    entries: Mutex<HashMap<K, Entry>>,
}

struct Entry {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Turns held or waited for; the entry goes when it falls to 0.
    users: usize,
}

/// A key's turn, until dropped.
pub struct Turn<'a, K: Eq + Hash> {
    // Fields drop in order: the lock is released before the entry may be removed, so no
    // new entry for the key can be made while this turn still holds the old one.
    _guard: OwnedMutexGuard<()>,
    _user: User<'a, K>,
}

/// One holder or waiter of a key's turn; the last one to go removes the entry, whether
/// its turn came or it stopped waiting (its future was dropped).
struct User<'a, K: Eq + Hash> {
    locks: &'a KeyedLocks<K>,
    key: K,
}

impl<K> Default for KeyedLocks<K> {
    fn default() -> Self {
        KeyedLocks {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    /// Waits for `key`'s turn.
    pub async fn lock(&self, key: K) -> Turn<'_, K> {
        let lock = {
            let mut entries = self.entries();
            let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
                lock: Arc::default(),
                users: 0,
            });
            entry.users += 1;
            entry.lock.clone()
        };
        let user = User { locks: self, key };
        Turn {
            _guard: lock.lock_owned().await,
            _user: user,
        }
    }
}

impl<K> KeyedLocks<K> {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry>> {
        // Nothing panics while holding it; a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Eq + Hash> Drop for User<'_, K> {
    fn drop(&mut self) {
        let mut entries = self.locks.entries();
        if let Some(entry) = entries.get_mut(&self.key) {
            entry.users -= 1;
            if entry.users == 0 {
                entries.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn one_turn_per_key_and_keys_apart() {
        let locks = KeyedLocks::default();
        let a = locks.lock("a").await;
        assert!(
            locks.lock("a").now_or_never().is_none(),
            "a second turn of the same key waits"
        );
        let b = locks.lock("b").now_or_never();
        assert!(b.is_some(), "another key does not wait");
        drop(a);
        assert!(locks.lock("a").now_or_never().is_some());
        drop(b);
    }

    #[tokio::test]
    async fn the_map_keeps_only_the_keys_in_use() {
        let locks = KeyedLocks::default();
        let held = locks.lock(1).await;
        // A waiter that gives up (its future dropped) leaves nothing behind either.
        assert!(locks.lock(1).now_or_never().is_none());
        let other = locks.lock(2).await;
        assert_eq!(locks.entries().len(), 2);
        drop(held);
        assert_eq!(locks.entries().len(), 1);
        drop(other);
        assert!(locks.entries().is_empty());
    }
}
