//! UDP: one session per client address on a listener of a Service port. A session is
//! a socket connected to the endpoint chosen for the client's first datagram; the
//! client's datagrams go out through it, and the endpoint's replies go back to the
//! client from the listener's socket (so they come from the address the client sent
//! to). A session ends after `udp_idle` without traffic either way, when its endpoint's
//! drain deadline passes, when the endpoint refuses (ICMP unreachable), or when the
//! proxy stops; the client's next datagram starts a new one.

use super::port::{Lease, PortState};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Largest datagram forwarded.
const MAX_DATAGRAM: usize = 65535;

struct Session {
    upstream: UdpSocket,
    last: Mutex<Instant>,
}

impl Session {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

/// Forwards datagrams until the task is aborted. Sessions already open go on until
/// they end (they hold the listener's socket to answer from).
pub(super) async fn serve(socket: UdpSocket, port: Arc<PortState>) {
    let socket = Arc::new(socket);
    let sessions: Sessions = Arc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(service = %port.key, error = %e, "proxy: udp receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let existing = sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&client)
            .cloned();
        let session = match existing {
            Some(s) => s,
            None => match open(&port, client, &socket, &sessions).await {
                Some(s) => s,
                None => continue,
            },
        };
        session.touch();
        if let Err(e) = session.upstream.send(&buf[..n]).await {
            tracing::debug!(service = %port.key, %client, error = %e, "proxy: udp send failed");
        }
    }
}

/// Starts a session for `client`: chooses an endpoint, connects a socket to it and
/// spawns the task that answers.
async fn open(
    port: &Arc<PortState>,
    client: SocketAddr,
    listener: &Arc<UdpSocket>,
    sessions: &Sessions,
) -> Option<Arc<Session>> {
    let Some(lease) = port.choose(client.ip(), &[]) else {
        tracing::debug!(service = %port.key, %client, "proxy: no endpoint, datagram dropped");
        return None;
    };
    let endpoint = lease.addr();
    let any = match endpoint.ip() {
        IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let upstream = match UdpSocket::bind(any).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(service = %port.key, error = %e, "proxy: udp socket not opened");
            return None;
        }
    };
    if let Err(e) = upstream.connect(endpoint).await {
        tracing::debug!(service = %port.key, %endpoint, error = %e, "proxy: udp connect failed");
        return None;
    }
    let session = Arc::new(Session {
        upstream,
        last: Mutex::new(Instant::now()),
    });
    sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(client, session.clone());
    tracing::debug!(service = %port.key, %client, %endpoint, "proxy: udp session opened");
    tokio::spawn(answer(
        session.clone(),
        client,
        listener.clone(),
        lease,
        sessions.clone(),
        port.clone(),
    ));
    Some(session)
}

/// Sends the endpoint's replies to `client` until the session ends, then forgets it.
async fn answer(
    session: Arc<Session>,
    client: SocketAddr,
    listener: Arc<UdpSocket>,
    lease: Lease,
    sessions: Sessions,
    port: Arc<PortState>,
) {
    let idle = port.udp_idle;
    let mut stop = port.stop.clone();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let why = loop {
        let expires = session.last() + idle;
        tokio::select! {
            r = session.upstream.recv(&mut buf) => match r {
                Ok(n) => {
                    session.touch();
                    if let Err(e) = listener.send_to(&buf[..n], client).await {
                        tracing::debug!(service = %port.key, %client, error = %e, "proxy: udp reply failed");
                    }
                }
                Err(e) => break format!("endpoint error: {e}"),
            },
            () = tokio::time::sleep_until(expires) => {
                if session.last() + idle <= Instant::now() {
                    break "idle".to_string();
                }
            }
            () = lease.drained() => break "endpoint drained".to_string(),
            () = crate::agent::stopped(&mut stop) => break "stopped".to_string(),
        }
    };
    let mut map = sessions.lock().unwrap_or_else(|e| e.into_inner());
    if map.get(&client).is_some_and(|s| Arc::ptr_eq(s, &session)) {
        map.remove(&client);
    }
    drop(map);
    tracing::debug!(service = %port.key, %client, endpoint = %lease.addr(), why = %why, "proxy: udp session ended");
}
