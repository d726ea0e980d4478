//! One shared copy of the strings that many pending notifications repeat (target URL, endpoint).
//!
//! A million notifications pending for one merchant would otherwise hold a million copies of its
//! URL. Copies nobody else holds any more are dropped whenever the set has doubled.

use std::collections::HashSet;
use std::sync::Arc;

pub(super) struct Interner {
    set: HashSet<Arc<str>, foldhash::fast::RandomState>,
    purge_at: usize,
}

const MIN_PURGE_AT: usize = 1024;

impl Default for Interner {
    fn default() -> Self {
        Interner {
            set: HashSet::default(),
            purge_at: MIN_PURGE_AT,
        }
    }
}

impl Interner {
    /// The shared copy of `s` (which becomes the shared copy if there is none yet).
    pub fn intern(&mut self, s: &Arc<str>) -> Arc<str> {
        if let Some(shared) = self.set.get(&**s) {
            return shared.clone();
        }
        if self.set.len() >= self.purge_at {
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.purge_at = (self.set.len() * 2).max(MIN_PURGE_AT);
        }
        self.set.insert(s.clone());
        s.clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_allocation() {
        let mut i = Interner::default();
        let a = i.intern(&Arc::from("https://m.example.com/notify"));
        let b = i.intern(&Arc::from("https://m.example.com/notify"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(i.len(), 1);
    }

    #[test]
    fn strings_no_one_holds_are_dropped_when_the_set_fills() {
        let mut i = Interner::default();
        let kept = i.intern(&Arc::from("kept"));
        for n in 0..MIN_PURGE_AT * 3 {
            let _ = i.intern(&Arc::from(format!("gone-{n}").as_str()));
        }
        assert!(i.len() < MIN_PURGE_AT * 2, "{} strings kept", i.len());
        assert!(Arc::ptr_eq(&kept, &i.intern(&Arc::from("kept"))));
    }
}
