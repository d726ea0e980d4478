//! Per-payment order chains: which pending notification of each payment may be attempted.
//!
//! Notifications of one payment to one host share a chain key (a hash of `host|payment`, chosen
//! by the caller). They go out one at a time in enqueue order: a merchant must not see the void
//! before the payment it voids, so a later one waits until the earlier one is final.

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;
use std::collections::VecDeque;

use crate::NotificationId;

/// One payment's pending notifications, oldest first. Nearly every payment has a single pending
/// notification, so the head is held inline and the queue allocates only for a second one.
#[derive(Debug)]
struct Chain {
    head: NotificationId,
    rest: VecDeque<NotificationId>,
}

#[derive(Debug, Default)]
pub(super) struct Chains {
    chains: HashMap<u64, Chain>,
}

impl Chains {
    /// Puts `id` at the back of its chain. True when it is the head, i.e. it may be attempted as
    /// soon as it is due.
    pub fn push(&mut self, key: u64, id: NotificationId) -> bool {
        match self.chains.entry(key) {
            Entry::Vacant(e) => {
                e.insert(Chain {
                    head: id,
                    rest: VecDeque::new(),
                });
                true
            }
            Entry::Occupied(mut e) => {
                e.get_mut().rest.push_back(id);
                false
            }
        }
    }

    /// Removes `id`, which reached a final state. Returns the chain's next notification when `id`
    /// was the head and another one waits: that one may go now.
    pub fn finish(&mut self, key: u64, id: NotificationId) -> Option<NotificationId> {
        let Entry::Occupied(mut e) = self.chains.entry(key) else {
            return None;
        };
        let chain = e.get_mut();
        if chain.head != id {
            chain.rest.retain(|x| *x != id);
            return None;
        }
        match chain.rest.pop_front() {
            Some(next) => {
                chain.head = next;
                Some(next)
            }
            None => {
                e.remove();
                None
            }
        }
    }

    /// The head of `id`'s chain when `id` waits behind it.
    pub fn waiting_for(&self, key: u64, id: NotificationId) -> Option<NotificationId> {
        self.chains
            .get(&key)
            .and_then(|c| (c.head != id).then_some(c.head))
    }

    /// Payments with at least one pending notification.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.chains.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> NotificationId {
        NotificationId::from_u128(n)
    }

    #[test]
    fn a_payment_goes_out_one_notification_at_a_time_oldest_first() {
        let mut o = Chains::default();
        assert!(o.push(7, id(1)));
        assert!(!o.push(7, id(2)));
        assert!(!o.push(7, id(3)));
        assert!(o.push(8, id(4)), "another payment is independent");
        assert_eq!(o.waiting_for(7, id(3)), Some(id(1)));
        assert_eq!(o.waiting_for(7, id(1)), None);
        assert_eq!(o.finish(7, id(1)), Some(id(2)));
        assert_eq!(o.finish(7, id(2)), Some(id(3)));
        assert_eq!(o.finish(7, id(3)), None);
        assert_eq!(o.len(), 1);
        assert_eq!(o.finish(8, id(4)), None);
        assert_eq!(o.len(), 0);
        assert!(
            o.push(7, id(5)),
            "a payment with nothing pending starts afresh"
        );
    }

    #[test]
    fn finishing_a_waiting_notification_keeps_the_head() {
        let mut o = Chains::default();
        o.push(7, id(1));
        o.push(7, id(2));
        o.push(7, id(3));
        assert_eq!(o.finish(7, id(2)), None, "the head did not change");
        assert_eq!(o.finish(7, id(1)), Some(id(3)));
        assert_eq!(o.finish(9, id(3)), None, "an unknown payment is ignored");
        assert_eq!(o.finish(7, id(3)), None);
        assert_eq!(o.len(), 0);
    }
}
