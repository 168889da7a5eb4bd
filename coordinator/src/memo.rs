//! [`Memo`]: answers kept in memory by key, shared between tasks. Whoever owns the
//! writes that change an answer forgets its key; a poisoned lock (a panic while holding
//! it) does not stop the others, since each operation leaves the map whole.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{RwLock, RwLockWriteGuard};

pub struct Memo<K, V>(RwLock<HashMap<K, V>>);

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo(RwLock::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(key).cloned()
    }

    pub fn insert(&self, key: K, value: V) {
        self.write().insert(key, value);
    }

    pub fn forget(&self, key: &K) {
        self.write().remove(key);
    }

    /// Forgets every entry whose value fails `keep`.
    pub fn retain(&self, keep: impl FnMut(&K, &mut V) -> bool) {
        self.write().retain(keep);
    }

    pub fn clear(&self) {
        self.write().clear();
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<K, V>> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
