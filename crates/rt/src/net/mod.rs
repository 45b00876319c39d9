//! Networking: async TCP sockets, and serving one listener from every loop.

mod accept;
mod tcp;

pub use accept::Acceptor;
pub use tcp::{bind_std, TcpListener, TcpStream};
