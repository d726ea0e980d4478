//! Per-payment order: which pending notification of each payment may be attempted now.
//!
//! Notifications of one payment (same endpoint and payment, see `Job::order`) go out one at a
//! time, oldest first: a merchant must not see the void before the payment it voids.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use notifyd_core::NotificationId;

/// The pending notifications of one payment, oldest first. Nearly every payment has a single
/// pending notification, so the head is held inline and the queue allocates only for a second.
struct Queue {
    head: NotificationId,
    rest: VecDeque<NotificationId>,
}

#[derive(Default)]
pub(super) struct PaymentOrder {
    queues: HashMap<u64, Queue, foldhash::fast::RandomState>,
}

impl PaymentOrder {
    /// Puts `id` at the back of its payment's queue. True when it is the head, i.e. it may be
    /// attempted as soon as it is due.
    pub fn push(&mut self, order: u64, id: NotificationId) -> bool {
        match self.queues.entry(order) {
            Entry::Vacant(e) => {
                e.insert(Queue {
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

    /// Removes `id`, which reached a final state. Returns the payment's next notification when
    /// `id` was the head and another one waits: that one may go now.
    pub fn finish(&mut self, order: u64, id: NotificationId) -> Option<NotificationId> {
        let Entry::Occupied(mut e) = self.queues.entry(order) else {
            return None;
        };
        let queue = e.get_mut();
        if queue.head != id {
            queue.rest.retain(|x| *x != id);
            return None;
        }
        match queue.rest.pop_front() {
            Some(next) => {
                queue.head = next;
                Some(next)
            }
            None => {
                e.remove();
                None
            }
        }
    }

    /// Payments with at least one pending notification.
    #[cfg(test)]
    pub fn payments(&self) -> usize {
        self.queues.len()
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
        let mut o = PaymentOrder::default();
        assert!(o.push(7, id(1)));
        assert!(!o.push(7, id(2)));
        assert!(!o.push(7, id(3)));
        assert!(o.push(8, id(4)), "another payment is independent");
        assert_eq!(o.finish(7, id(1)), Some(id(2)));
        assert_eq!(o.finish(7, id(2)), Some(id(3)));
        assert_eq!(o.finish(7, id(3)), None);
        assert_eq!(o.payments(), 1);
        assert_eq!(o.finish(8, id(4)), None);
        assert_eq!(o.payments(), 0);
        assert!(
            o.push(7, id(5)),
            "a payment with nothing pending starts afresh"
        );
    }

    #[test]
    fn finishing_a_waiting_notification_keeps_the_head() {
        let mut o = PaymentOrder::default();
        o.push(7, id(1));
        o.push(7, id(2));
        o.push(7, id(3));
        assert_eq!(o.finish(7, id(2)), None, "the head did not change");
        assert_eq!(o.finish(7, id(1)), Some(id(3)));
        assert_eq!(o.finish(9, id(3)), None, "an unknown payment is ignored");
        assert_eq!(o.finish(7, id(3)), None);
        assert_eq!(o.payments(), 0);
    }
}
