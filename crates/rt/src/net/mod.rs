//! Networking: async TCP sockets, and serving one listener from every loop.

mod accept;
mod sys;
mod tcp;

pub use crate::reactor::wake_readers;
pub use accept::Acceptor;
pub use tcp::{bind_std, TcpListener, TcpStream};
