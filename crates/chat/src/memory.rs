//! The in-process broker: room logs in memory, events through broadcast
//! topics that every loop shares.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::{ready, Future};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gyre_rt::broadcast::{Subscription, Topic, TopicConfig};

use crate::broker::{Broker, History, RoomInfo};
#[cfg(test)]
use crate::model::EventKind;
use crate::model::{now_ms, ChatError, ChatMessage, Event, PresenceChange};

/// How long a long poller counts as present after its last poll.
pub const POLL_PRESENCE: Duration = Duration::from_secs(35);

/// Presence changes are gathered for this long and announced in one event:
/// when 500 people join a room, that is a few events to each, not 500.
pub const PRESENCE_BATCH: Duration = Duration::from_millis(250);

/// Rooms, logs and presence, all in this process.
#[derive(Debug)]
pub struct InProcess {
    /// Messages kept per room.
    retention: usize,
    max_rooms: usize,
    topic: TopicConfig,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
}

#[derive(Debug)]
struct Room {
    name: String,
    topic: Topic<Arc<Event>>,
    state: Mutex<RoomState>,
}

#[derive(Debug, Default)]
struct RoomState {
    /// INVARIANT: ids are consecutive, oldest first, at most `retention`.
    log: VecDeque<Arc<ChatMessage>>,
    /// The id the next message gets.
    next_id: u64,
    people: BTreeMap<String, Presence>,
    /// Changes not announced yet.
    joined: BTreeSet<String>,
    left: BTreeSet<String>,
    /// An announcement is due (a task waits [`PRESENCE_BATCH`] to make it).
    announce_due: bool,
}

#[derive(Debug, Default)]
struct Presence {
    /// Open connections (WebSocket, SSE) of this nickname.
    conns: usize,
    /// A long poller counts until then.
    polled_until: Option<Instant>,
}

impl Presence {
    fn present(&self, now: Instant) -> bool {
        self.conns > 0 || self.polled_until.is_some_and(|t| t > now)
    }
}

impl InProcess {
    /// A broker keeping `retention` messages per room, at most `max_rooms`
    /// rooms, with `topic` for each room's subscribers.
    pub fn new(retention: usize, max_rooms: usize, topic: TopicConfig) -> Self {
        InProcess {
            retention: retention.max(1),
            max_rooms,
            topic,
            rooms: Mutex::new(HashMap::new()),
        }
    }

    fn room(&self, name: &str) -> Result<Arc<Room>, ChatError> {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        if let Some(r) = rooms.get(name) {
            return Ok(r.clone());
        }
        if rooms.len() >= self.max_rooms {
            return Err(ChatError::new(
                "too_many_rooms",
                format!("this server holds at most {} rooms", self.max_rooms),
            ));
        }
        let room = Arc::new(Room {
            name: name.to_owned(),
            topic: Topic::new(self.topic),
            state: Mutex::new(RoomState {
                next_id: 1,
                ..RoomState::default()
            }),
        });
        rooms.insert(name.to_owned(), room.clone());
        Ok(room)
    }

    fn existing(&self, name: &str) -> Option<Arc<Room>> {
        self.rooms.lock().expect("rooms lock").get(name).cloned()
    }
}

impl Room {
    /// Drops expired pollers (to be announced); returns who is present.
    fn sweep(self: &Arc<Self>, state: &mut RoomState, now: Instant) -> Vec<String> {
        let gone: Vec<String> = state
            .people
            .iter()
            .filter(|(_, p)| !p.present(now))
            .map(|(n, _)| n.clone())
            .collect();
        for nick in gone {
            state.people.remove(&nick);
            self.changed(state, nick, false);
        }
        state.people.keys().cloned().collect()
    }

    /// Records that `nick` came or went, to be announced in the next batch.
    fn changed(self: &Arc<Self>, state: &mut RoomState, nick: String, came: bool) {
        let (this, other) = if came {
            (&mut state.joined, &mut state.left)
        } else {
            (&mut state.left, &mut state.joined)
        };
        // Gone and back (or back and gone) within one batch: nothing to say.
        if !other.remove(&nick) {
            this.insert(nick);
        }
        if !state.announce_due {
            state.announce_due = true;
            let room = self.clone();
            gyre_rt::spawn(async move {
                gyre_rt::time::sleep(PRESENCE_BATCH).await;
                room.announce();
            })
            .detach();
        }
    }

    /// Publishes the gathered presence changes.
    fn announce(self: &Arc<Self>) {
        let mut state = self.state.lock().expect("room lock");
        let people = self.sweep(&mut state, Instant::now());
        state.announce_due = false;
        let joined: Vec<String> = std::mem::take(&mut state.joined).into_iter().collect();
        let left: Vec<String> = std::mem::take(&mut state.left).into_iter().collect();
        if joined.is_empty() && left.is_empty() {
            return;
        }
        let change = PresenceChange {
            people: &people,
            joined: &joined,
            left: &left,
        };
        // Under the room's lock, like messages: every loop sees one order.
        self.topic.publish(Arc::new(Event::presence(&change)));
    }

    /// Updates `nick`'s presence with `f`; a change is announced soon after.
    fn presence(self: &Arc<Self>, nick: &str, f: impl FnOnce(&mut Presence)) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("room lock");
        let was = state.people.get(nick).is_some_and(|p| p.present(now));
        f(state.people.entry(nick.to_owned()).or_default());
        let is = state.people.get(nick).is_some_and(|p| p.present(now));
        if !is {
            state.people.remove(nick);
        }
        if was != is {
            self.changed(&mut state, nick.to_owned(), is);
        }
        self.sweep(&mut state, now);
    }
}

impl Broker for InProcess {
    fn append(
        &self,
        room: &str,
        nick: &str,
        text: &str,
    ) -> impl Future<Output = Result<Arc<ChatMessage>, ChatError>> {
        let result = self.room(room).map(|r| {
            let mut state = r.state.lock().expect("room lock");
            let message = Arc::new(ChatMessage {
                id: state.next_id,
                room: r.name.clone(),
                nick: nick.to_owned(),
                text: text.to_owned(),
                ts: now_ms(),
            });
            state.next_id += 1;
            state.log.push_back(message.clone());
            if state.log.len() > self.retention {
                state.log.pop_front();
            }
            // Published under the room's lock: every loop sees the room's
            // messages in id order.
            r.topic.publish(Arc::new(Event::message(message.clone())));
            message
        });
        ready(result)
    }

    fn history(
        &self,
        room: &str,
        after: Option<u64>,
        recent: usize,
    ) -> impl Future<Output = Result<History, ChatError>> {
        let Some(r) = self.existing(room) else {
            // A room nobody wrote to: empty, and nothing was lost.
            return ready(Ok(History::default()));
        };
        let state = r.state.lock().expect("room lock");
        let last_id = state.next_id - 1;
        let first_id = state.log.front().map_or(state.next_id, |m| m.id);
        let history = match after {
            None => History {
                messages: state
                    .log
                    .iter()
                    .skip(state.log.len().saturating_sub(recent))
                    .cloned()
                    .collect(),
                trimmed: false,
                last_id,
            },
            Some(after) => History {
                // Ids are consecutive: skip straight to the first one after `after`.
                messages: state
                    .log
                    .iter()
                    .skip(after.saturating_add(1).saturating_sub(first_id) as usize)
                    .cloned()
                    .collect(),
                trimmed: after.saturating_add(1) < first_id,
                last_id,
            },
        };
        ready(Ok(history))
    }

    fn subscribe(&self, room: &str) -> Result<Subscription<Arc<Event>>, ChatError> {
        Ok(self.room(room)?.topic.subscribe())
    }

    fn join(&self, room: &str, nick: &str) {
        if let Ok(r) = self.room(room) {
            r.presence(nick, |p| p.conns += 1);
        }
    }

    fn leave(&self, room: &str, nick: &str) {
        if let Some(r) = self.existing(room) {
            r.presence(nick, |p| p.conns = p.conns.saturating_sub(1));
        }
    }

    fn touch(&self, room: &str, nick: &str) {
        if let Ok(r) = self.room(room) {
            r.presence(nick, |p| {
                p.polled_until = Some(Instant::now() + POLL_PRESENCE)
            });
        }
    }

    fn people(&self, room: &str) -> Vec<String> {
        match self.existing(room) {
            Some(r) => {
                let mut state = r.state.lock().expect("room lock");
                r.sweep(&mut state, Instant::now())
            }
            None => Vec::new(),
        }
    }

    fn rooms(&self) -> impl Future<Output = Vec<RoomInfo>> {
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .expect("rooms lock")
            .values()
            .cloned()
            .collect();
        let now = Instant::now();
        let mut list: Vec<RoomInfo> = rooms
            .iter()
            .map(|r| {
                let mut state = r.state.lock().expect("room lock");
                let people = r.sweep(&mut state, now).len();
                RoomInfo {
                    name: r.name.clone(),
                    people,
                    last_id: state.next_id - 1,
                }
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        ready(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<F: Future>(f: F) -> F::Output {
        gyre_rt::block_on(f)
    }

    #[test]
    fn ids_increase_and_history_reports_trimming() {
        let b = InProcess::new(3, 10, TopicConfig::default());
        let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
        let b = Arc::new(b);
        let b2 = b.clone();
        rt.block_on(async move {
            for i in 1..=5u64 {
                let m = b2.append("lobby", "ann", &format!("m{i}")).await.unwrap();
                assert_eq!(m.id, i);
            }
        });
        let ids = |h: History| h.messages.iter().map(|m| m.id).collect::<Vec<_>>();
        let h = block(b.history("lobby", Some(0), 50)).unwrap();
        assert!(h.trimmed, "messages 1 and 2 are gone");
        assert_eq!((ids(h.clone()), h.last_id), (vec![3, 4, 5], 5));
        let h = block(b.history("lobby", Some(2), 50)).unwrap();
        assert!(!h.trimmed, "nothing after 2 is gone");
        assert_eq!(ids(h), vec![3, 4, 5]);
        assert_eq!(
            ids(block(b.history("lobby", Some(4), 50)).unwrap()),
            vec![5]
        );
        assert_eq!(
            ids(block(b.history("lobby", Some(9), 50)).unwrap()),
            Vec::<u64>::new()
        );
        assert_eq!(ids(block(b.history("lobby", None, 2)).unwrap()), vec![4, 5]);
        assert_eq!(
            block(b.history("empty", Some(0), 50)).unwrap(),
            History::default()
        );
    }

    #[test]
    fn rooms_are_bounded_and_presence_counts_connections() {
        let b = InProcess::new(10, 2, TopicConfig::default());
        let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
        let b = Arc::new(b);
        let b2 = b.clone();
        rt.block_on(async move {
            b2.append("a", "x", "1").await.unwrap();
            b2.append("b", "x", "1").await.unwrap();
            let e = b2.append("c", "x", "1").await.unwrap_err();
            assert_eq!(e.code, "too_many_rooms");
            b2.join("a", "ann");
            b2.join("a", "ann");
            b2.join("a", "bob");
            assert_eq!(b2.people("a"), vec!["ann", "bob"]);
            b2.leave("a", "ann");
            assert_eq!(
                b2.people("a"),
                vec!["ann", "bob"],
                "ann has a second connection"
            );
            b2.leave("a", "ann");
            b2.touch("a", "carl");
            assert_eq!(b2.people("a"), vec!["bob", "carl"]);
            let rooms = b2.rooms().await;
            assert_eq!(
                rooms[0],
                RoomInfo {
                    name: "a".into(),
                    people: 2,
                    last_id: 1
                }
            );
        });
    }

    #[test]
    fn presence_changes_are_announced_in_batches() {
        let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
        rt.block_on_local(|| async {
            let b = InProcess::new(10, 10, TopicConfig::default());
            let mut sub = b.subscribe("a").unwrap();
            for nick in ["ann", "bob", "carl"] {
                b.join("a", nick);
            }
            b.leave("a", "bob"); // came and went within the batch: not told
            let event = sub.recv().await.unwrap();
            assert!(matches!(event.kind, EventKind::Presence));
            assert_eq!(
                event.data,
                r#"{"people":["ann","carl"],"joined":["ann","carl"]}"#
            );
            let more = gyre_rt::time::timeout(PRESENCE_BATCH * 4, sub.recv()).await;
            assert!(more.is_err(), "one event for the whole batch");
            b.leave("a", "ann");
            let event = sub.recv().await.unwrap();
            assert_eq!(event.data, r#"{"people":["carl"],"left":["ann"]}"#);
        });
    }
}
