//! TCP: accept on a listener of a Service port, choose an endpoint, connect (with a
//! timeout, trying each ready endpoint at most once), then copy bytes both ways until
//! both sides have closed (a half-close is passed on), the endpoint's drain deadline
//! passes, or the proxy stops.

use super::port::PortState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Accepts connections until the task is aborted (which closes the listener).
pub(super) async fn serve(listener: TcpListener, port: Arc<PortState>) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(connection(client, peer, port.clone()));
            }
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::debug!(service = %port.key, error = %e, "proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut client: TcpStream, peer: SocketAddr, port: Arc<PortState>) {
    let _ = client.set_nodelay(true);
    let mut tried = Vec::new();
    let (mut upstream, lease) = loop {
        let Some(lease) = port.choose(peer.ip(), &tried) else {
            tracing::debug!(service = %port.key, %peer, tried = tried.len(), "proxy: no endpoint, closing");
            return;
        };
        let addr = lease.addr();
        match tokio::time::timeout(port.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => break (s, lease),
            Ok(Err(e)) => {
                tracing::debug!(service = %port.key, endpoint = %addr, error = %e, "proxy: connect failed")
            }
            Err(_) => {
                tracing::debug!(service = %port.key, endpoint = %addr, "proxy: connect timed out")
            }
        }
        tried.push(addr);
    };
    let _ = upstream.set_nodelay(true);
    let endpoint = lease.addr();
    tracing::debug!(service = %port.key, %peer, %endpoint, "proxy: connected");
    let mut stop = port.stop.clone();
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => match r {
            Ok((up, down)) => tracing::debug!(service = %port.key, %peer, %endpoint, up, down, "proxy: connection done"),
            Err(e) => tracing::debug!(service = %port.key, %peer, %endpoint, error = %e, "proxy: connection failed"),
        },
        () = lease.drained() => {
            tracing::debug!(service = %port.key, %peer, %endpoint, "proxy: endpoint drained, connection closed");
        }
        () = crate::agent::stopped(&mut stop) => {}
    }
}
