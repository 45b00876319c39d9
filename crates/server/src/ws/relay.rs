//! A socket joined to a broadcast topic: the room pattern of chats and
//! live feeds, written once.

use gyre_rt::broadcast::{RecvError, Topic};
use gyre_rt::{select, Either};

use super::{code, Prepared, WebSocket};

/// Most queued messages sent in one write.
const BATCH: usize = 64;

/// Joins `socket` to `topic` until either side ends: every text or binary
/// message the socket sends is published, and every message published (by
/// anyone, this socket included) is sent to it, a backlog in one write. A
/// socket that lagged behind only misses messages (logged); one whose
/// subscription was closed as too slow gets close 1008.
pub async fn relay(socket: WebSocket, topic: &Topic<Prepared>) {
    let mut subscription = topic.subscribe();
    let (tx, mut rx) = socket.split();
    loop {
        match select(rx.recv(), subscription.recv()).await {
            Either::Left(Some(message)) => {
                if let Some(prepared) = Prepared::message(&message) {
                    topic.publish(prepared);
                }
            }
            Either::Left(None) => break,
            Either::Right(Ok(prepared)) => {
                let mut batch = vec![prepared];
                while batch.len() < BATCH {
                    match subscription.try_next() {
                        Some(p) => batch.push(p),
                        None => break,
                    }
                }
                if tx.send_prepared_all(&batch).await.is_err() {
                    break;
                }
            }
            Either::Right(Err(RecvError::Lagged(n))) => {
                tracing::debug!(target: "gyre::ws", "a slow socket missed {n} message(s)");
            }
            Either::Right(Err(RecvError::Closed)) => {
                tx.close(code::POLICY, "too slow for the broadcast").await;
                break;
            }
        }
    }
}
