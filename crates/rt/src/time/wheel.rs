//! A hashed timing wheel: O(1) insert and cancel, amortised O(1) expiry.
//!
//! Time is counted in ticks (milliseconds for the runtime). A timer due at tick
//! `d` lives in slot `d % SLOTS`, in a doubly linked list threaded through a
//! slab, so that cancelling is an unlink. Advancing the wheel visits each slot
//! whose tick has passed and fires the entries that are due; an entry due in a
//! later revolution stays where it is (Varghese and Lauck's "scheme 4"). A
//! bitmap of occupied slots lets the loop find its next wake-up in a few word
//! operations instead of scanning every slot.

use std::num::NonZeroU64;

use slab::Slab;

/// Slots per revolution. A power of two so that `% SLOTS` is a mask; with one
/// millisecond ticks a revolution is 1.024 s, so a 60 s keep-alive timeout is
/// looked at about 60 times in its life.
const SLOTS: usize = 1024;
const WORDS: usize = SLOTS / 64;

/// Names one inserted timer. Stays valid, and harmless, after the timer fired:
/// its `id` no longer matches, so `remove` ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerKey {
    /// Index of the entry in the slab.
    index: u32,
    /// Unique id of the insertion, so a reused slab index is told apart.
    /// Never zero, so that an `Option<TimerKey>` takes no more room.
    id: NonZeroU64,
}

/// A link in a slot's list: a slab index, or none. Four bytes rather than
/// an `Option<usize>`'s sixteen: every pending timer (one per idle
/// connection) holds two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link(u32);

impl Link {
    const NONE: Link = Link(u32::MAX);

    fn to(index: usize) -> Link {
        Link(
            u32::try_from(index)
                .ok()
                .filter(|&i| i != u32::MAX)
                .expect("fewer than 2^32 - 1 timers"),
        )
    }

    fn get(self) -> Option<usize> {
        (self != Link::NONE).then_some(self.0 as usize)
    }
}

#[derive(Debug)]
struct Entry<T> {
    /// Tick at which the timer is due.
    deadline: u64,
    /// Unique id of this insertion (see [`TimerKey`]).
    id: NonZeroU64,
    /// Previous entry in the same slot's list.
    prev: Link,
    /// Next entry in the same slot's list.
    next: Link,
    /// What the caller stored, handed back when the timer fires.
    value: T,
}

/// A hashed timing wheel holding values of type `T` (the runtime stores wakers).
#[derive(Debug)]
pub struct Wheel<T> {
    /// Head of each slot's list of entries.
    heads: Box<[Link; SLOTS]>,
    /// Bit `s` is set iff slot `s` holds at least one entry.
    occupied: [u64; WORDS],
    /// All live entries.
    entries: Slab<Entry<T>>,
    /// The last tick that has been processed; every entry due at or before it has fired.
    now: u64,
    /// Source of unique insertion ids.
    next_id: NonZeroU64,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new(0)
    }
}

impl<T> Wheel<T> {
    /// An empty wheel whose clock starts at tick `now`.
    pub fn new(now: u64) -> Self {
        Wheel {
            heads: Box::new([Link::NONE; SLOTS]),
            occupied: [0; WORDS],
            entries: Slab::new(),
            now,
            next_id: NonZeroU64::MIN,
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last processed tick.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Inserts a timer due at `deadline`. A deadline that has already passed
    /// fires at the next `advance`.
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let deadline = deadline.max(self.now + 1);
        let slot = (deadline as usize) & (SLOTS - 1);
        let id = self.next_id;
        self.next_id = id.checked_add(1).expect("2^64 timers");
        let head = self.heads[slot];
        let index = self.entries.insert(Entry {
            deadline,
            id,
            prev: Link::NONE,
            next: head,
            value,
        });
        let link = Link::to(index);
        if let Some(h) = head.get() {
            self.entries[h].prev = link;
        }
        self.heads[slot] = link;
        self.occupied[slot / 64] |= 1 << (slot % 64);
        TimerKey { index: link.0, id }
    }

    /// Gives mutable access to a pending timer's value, or `None` if it fired or was removed.
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        match self.entries.get_mut(key.index as usize) {
            Some(e) if e.id == key.id => Some(&mut e.value),
            _ => None,
        }
    }

    /// Cancels a timer; returns its value if it was still pending.
    pub fn remove(&mut self, key: TimerKey) -> Option<T> {
        let index = key.index as usize;
        match self.entries.get(index) {
            Some(e) if e.id == key.id => {}
            _ => return None,
        }
        self.unlink(index);
        Some(self.entries.remove(index).value)
    }

    fn unlink(&mut self, index: usize) {
        let (prev, next, deadline) = {
            let e = &self.entries[index];
            (e.prev, e.next, e.deadline)
        };
        let slot = (deadline as usize) & (SLOTS - 1);
        match prev.get() {
            Some(p) => self.entries[p].next = next,
            None => self.heads[slot] = next,
        }
        if let Some(n) = next.get() {
            self.entries[n].prev = prev;
        }
        if self.heads[slot] == Link::NONE {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
        }
    }

    /// Moves the clock to tick `to` and pushes the value of every timer due at
    /// or before it onto `fired`. Moving backwards does nothing.
    pub fn advance(&mut self, to: u64, fired: &mut Vec<T>) {
        if to <= self.now {
            return;
        }
        // One revolution visits every slot, so a long jump costs at most SLOTS visits.
        let end = to.min(self.now + SLOTS as u64);
        let mut tick = self.now + 1;
        while tick <= end {
            let slot = (tick as usize) & (SLOTS - 1);
            if self.occupied[slot / 64] & (1 << (slot % 64)) != 0 {
                self.expire_slot(slot, to, fired);
            }
            tick += 1;
        }
        self.now = to;
    }

    fn expire_slot(&mut self, slot: usize, to: u64, fired: &mut Vec<T>) {
        let mut cursor = self.heads[slot].get();
        while let Some(index) = cursor {
            let entry = &self.entries[index];
            cursor = entry.next.get();
            if entry.deadline <= to {
                self.unlink(index);
                fired.push(self.entries.remove(index).value);
            }
        }
    }

    /// A lower bound on the next tick at which a timer may fire, or `None` if
    /// none is pending. It is the first occupied slot after `now`; the entries
    /// there may belong to a later revolution, in which case the caller wakes,
    /// fires nothing, and asks again.
    pub fn next_expiration(&self) -> Option<u64> {
        if self.entries.is_empty() {
            return None;
        }
        let start = ((self.now + 1) as usize) & (SLOTS - 1);
        // Scan the bitmap from `start`, wrapping once around.
        for step in 0..=WORDS {
            let word_index = (start / 64 + step) % WORDS;
            let mut word = self.occupied[word_index];
            if step == 0 {
                word &= !0u64 << (start % 64);
            } else if step == WORDS {
                // Back at the first word: only the bits before `start`.
                word &= !(!0u64 << (start % 64));
            }
            if word != 0 {
                let slot = word_index * 64 + word.trailing_zeros() as usize;
                let distance = (slot + SLOTS - start) % SLOTS;
                return Some(self.now + 1 + distance as u64);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advance(w: &mut Wheel<u32>, to: u64) -> Vec<u32> {
        let mut fired = Vec::new();
        w.advance(to, &mut fired);
        fired.sort();
        fired
    }

    #[test]
    fn wheel_fires_at_deadline_not_before() {
        let mut w = Wheel::new(0);
        w.insert(5, 1);
        w.insert(3, 2);
        assert_eq!(advance(&mut w, 2), Vec::<u32>::new());
        assert_eq!(advance(&mut w, 3), vec![2]);
        assert_eq!(advance(&mut w, 4), Vec::<u32>::new());
        assert_eq!(advance(&mut w, 5), vec![1]);
        assert!(w.is_empty());
    }

    #[test]
    fn wheel_keeps_later_revolutions() {
        let mut w = Wheel::new(0);
        // Same slot, three revolutions apart.
        w.insert(10, 1);
        w.insert(10 + SLOTS as u64, 2);
        w.insert(10 + 3 * SLOTS as u64, 3);
        assert_eq!(advance(&mut w, 10), vec![1]);
        assert_eq!(advance(&mut w, 10 + SLOTS as u64 - 1), Vec::<u32>::new());
        assert_eq!(advance(&mut w, 10 + SLOTS as u64), vec![2]);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn wheel_long_jump_fires_everything_due() {
        let mut w = Wheel::new(0);
        for i in 0..5000u32 {
            w.insert(u64::from(i) * 7 + 1, i);
        }
        let fired = advance(&mut w, 20_000);
        let due = (0..5000u32).filter(|i| u64::from(*i) * 7 < 20_000).count();
        assert_eq!(fired.len(), due);
        assert_eq!(w.len(), 5000 - due);
        let rest = advance(&mut w, 100_000);
        assert_eq!(rest.len(), 5000 - due);
        assert!(w.is_empty());
    }

    #[test]
    fn wheel_remove_cancels_and_stale_key_is_harmless() {
        let mut w = Wheel::new(0);
        let a = w.insert(4, 1);
        let b = w.insert(4, 2);
        let c = w.insert(4, 3);
        assert_eq!(w.remove(b), Some(2));
        assert_eq!(w.remove(b), None);
        assert_eq!(advance(&mut w, 4), vec![1, 3]);
        // Keys of fired timers no longer match, even if the slab index is reused.
        let d = w.insert(9, 4);
        assert_eq!(w.remove(a), None);
        assert_eq!(w.remove(c), None);
        assert_eq!(w.get_mut(d).copied(), Some(4));
        assert_eq!(w.remove(d), Some(4));
        assert!(w.next_expiration().is_none());
    }

    #[test]
    fn wheel_past_deadline_fires_next_tick() {
        let mut w = Wheel::new(100);
        w.insert(50, 7);
        assert_eq!(w.next_expiration(), Some(101));
        assert_eq!(advance(&mut w, 101), vec![7]);
    }

    #[test]
    fn wheel_next_expiration_wraps_around() {
        let mut w = Wheel::new(0);
        assert_eq!(w.next_expiration(), None);
        w.insert(SLOTS as u64 + 2, 1); // slot 2, next revolution
                                       // Lower bound: slot 2 of this revolution.
        assert_eq!(w.next_expiration(), Some(2));
        advance(&mut w, 700);
        // From tick 701 the next occupied slot is 2 of the next revolution.
        assert_eq!(w.next_expiration(), Some(SLOTS as u64 + 2));
        let mut w = Wheel::new(0);
        w.insert(130, 1);
        w.insert(64, 2);
        assert_eq!(w.next_expiration(), Some(64));
    }

    #[test]
    fn wheel_many_timers_cancel_in_any_order() {
        let mut w = Wheel::new(0);
        let keys: Vec<_> = (0..10_000u32)
            .map(|i| w.insert(u64::from(i % 3000) + 1, i))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(w.remove(*k), Some(i as u32));
            }
        }
        let fired = advance(&mut w, 5000);
        assert_eq!(fired.len(), 5000);
        assert!(fired.iter().all(|v| v % 2 == 1));
    }
}
