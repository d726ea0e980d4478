//! What the receiver's answer means (PROTOCOL.md §7): delivered, failed for good, retry, or
//! slow down.
