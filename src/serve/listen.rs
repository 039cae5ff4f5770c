//! Connections: accepting them, bounding what each may hold, and closing them.
//!
//! Owns the accept loop (HTTP/1.1), the header read timeout (a client that has not sent its whole
//! request head in time is dropped), the idle timeout (a connection with no bytes either way for
//! that long is closed, between requests or in the middle of one), the cap on connections from one
//! client address and on all connections (beyond either, a new connection is closed at once), and
//! graceful shutdown. Each request carries its peer's address (`ConnectInfo`) for the per-client
//! limits in `admission`. Not here: body read limits and timeouts (`http`), routes, keys.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

use crate::sync::Recover;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// For a request's whole head (request line and headers).
    pub header_timeout: Duration,
    /// With no byte read or written.
    pub idle_timeout: Duration,
    /// Open connections from one client address.
    pub per_client: usize,
    /// Open connections in all.
    pub total: usize,
}

impl Default for ConnectionLimits {
    /// A real client sends its head in milliseconds; a browser keeps a connection a few idle
    /// seconds; 64 connections from one address is more than any browser or SDK opens, and 1,024
    /// in all stays well under the process's file limit.
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            per_client: 64,
            total: 1024,
        }
    }
}

/// Open connections, by client address.
#[derive(Default)]
struct Open {
    by_client: HashMap<IpAddr, usize>,
    total: usize,
}

/// A connection's place among the open ones; given back on drop.
struct Place {
    open: Arc<Mutex<Open>>,
    client: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.open.lock_recovered();
        open.total -= 1;
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

fn take_place(open: &Arc<Mutex<Open>>, client: IpAddr, limits: &ConnectionLimits) -> Option<Place> {
    let mut guard = open.lock_recovered();
    let mine = guard.by_client.get(&client).copied().unwrap_or(0);
    if guard.total >= limits.total || mine >= limits.per_client {
        return None;
    }
    guard.total += 1;
    *guard.by_client.entry(client).or_default() += 1;
    Some(Place {
        open: open.clone(),
        client,
    })
}

/// Serve `app` on `listener` until `shutdown` resolves; then stop accepting, let requests in
/// flight finish (connections idle or still sending a head are closed), and return.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(place) = take_place(&open, peer.ip(), &limits) else {
            tracing::debug!("connection from {peer} refused: too many open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let closing = closing.subscribe();
        connections.spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            closing,
            place,
        ));
        while connections.try_join_next().is_some() {}
    }
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut closing: tokio::sync::watch::Receiver<bool>,
    _place: Place,
) {
    let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout));
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move {
            let request = request.map(Body::new);
            tower_service::Service::call(&mut app, request).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.wait_for(|c| *c) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

/// A stream that fails with `TimedOut` once it has been idle (no byte read or written) for
/// `idle` while someone waits on it.
struct IdleTimeout {
    inner: TcpStream,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(inner: TcpStream, idle: Duration) -> IdleTimeout {
        IdleTimeout {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn active(&mut self) {
        let next = Instant::now() + self.idle;
        self.timer.as_mut().reset(next);
    }

    /// A poll of the inner stream: progress restarts the idle timer; waiting past it fails.
    fn track<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.active();
                Poll::Ready(result)
            }
            Poll::Pending if self.timer.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(timed_out()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "idle connection closed")
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.track(cx, poll)
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.track(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_beyond_a_clients_share_or_the_total_are_refused() {
        let open = Arc::new(Mutex::new(Open::default()));
        let limits = ConnectionLimits {
            per_client: 2,
            total: 3,
            ..ConnectionLimits::default()
        };
        let (a, b) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let first = take_place(&open, a, &limits).unwrap();
        let _second = take_place(&open, a, &limits).unwrap();
        assert!(take_place(&open, a, &limits).is_none(), "a's share is full");
        let _other = take_place(&open, b, &limits).unwrap();
        assert!(
            take_place(&open, b, &limits).is_none(),
            "all places are taken"
        );
        drop(first);
        assert!(take_place(&open, b, &limits).is_some(), "a place came back");
    }
}
