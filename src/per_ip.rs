//! What each client address holds at once (open connections, places in the hashing pool),
//! counted against a cap, and given back when the holder is dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts per client address. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct PerIp(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One unit counted against an address, until dropped.
#[derive(Debug)]
pub(crate) struct PerIpSlot {
    ip: IpAddr,
    counts: PerIp,
}

impl PerIp {
    /// One more for `ip`, or `None` when it holds `max` already.
    pub(crate) fn take(&self, ip: IpAddr, max: usize) -> Option<PerIpSlot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let held = counts.entry(ip).or_insert(0);
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(PerIpSlot {
            ip,
            counts: self.clone(),
        })
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        // Only map updates happen under the lock, none of which can panic half-way: a
        // poisoned lock is still consistent.
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = counts.get_mut(&self.ip) {
            *held -= 1;
            if *held == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PerIp;

    #[test]
    fn counts_per_address_up_to_the_cap_and_gives_back_on_drop() {
        let counts = PerIp::default();
        let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let first = counts.take(a, 2).expect("first");
        let second = counts.take(a, 2).expect("second");
        assert!(counts.take(a, 2).is_none(), "the cap");
        assert!(
            counts.take(b, 2).is_some(),
            "another address has its own count"
        );
        drop(first);
        let third = counts.take(a, 2).expect("a place given back");
        drop((second, third));
        assert!(counts.0.lock().unwrap().is_empty(), "nothing left behind");
    }
}
