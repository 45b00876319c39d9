//! Labels for the work a loop is doing, so the watchdog can say what stalled.
//!
//! A label is interned once (a router interns its routes when it is built) and
//! is then a `u32`: marking the current work is one relaxed atomic store.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use crate::event_loop;

/// An interned name of some work, such as `GET /report`. Id 0 means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Label(u32);

#[derive(Default)]
struct Interner {
    /// Names by id; index 0 is the empty "none" label.
    names: Vec<Arc<str>>,
    /// Ids by name.
    ids: HashMap<Arc<str>, u32>,
}

fn interner() -> &'static Mutex<Interner> {
    static INTERNER: OnceLock<Mutex<Interner>> = OnceLock::new();
    INTERNER.get_or_init(|| {
        Mutex::new(Interner {
            names: vec![Arc::from("")],
            ids: HashMap::new(),
        })
    })
}

impl Label {
    /// The label meaning "no particular work".
    pub const NONE: Label = Label(0);

    /// Interns `name` (taking a global lock: do it once, not per request).
    pub fn new(name: &str) -> Label {
        let mut i = interner().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = i.ids.get(name) {
            return Label(*id);
        }
        let id = u32::try_from(i.names.len()).expect("too many labels");
        let name: Arc<str> = Arc::from(name);
        i.names.push(name.clone());
        i.ids.insert(name, id);
        Label(id)
    }

    /// The label's text.
    pub fn name(self) -> Arc<str> {
        let i = interner().lock().unwrap_or_else(|e| e.into_inner());
        i.names
            .get(self.0 as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    pub(crate) fn from_raw(id: u32) -> Label {
        Label(id)
    }
}

/// Marks the work the current loop runs from now on; returns the previous label.
/// Does nothing off a loop thread.
pub fn set_label(label: Label) -> Label {
    // Only this thread writes the label, so a load and a store (no RMW) suffice.
    event_loop::try_with_current(|l| {
        let previous = l.shared.label.load(Ordering::Relaxed);
        l.shared.label.store(label.0, Ordering::Relaxed);
        Label(previous)
    })
    .unwrap_or(Label::NONE)
}
