//! Serving an axum [`Router`] over TLS (HTTP/1.1), robust against slow or hostile
//! clients.
//!
//! [`serve_tls`] accepts TCP connections, does the TLS handshake and serves HTTP/1.1 on
//! each connection in a task of its own (hyper, with the router wrapped by hyper-util's
//! `TowerToHyperService`). What it guards against, per [`ListenLimits`]:
//!
//! - a client that connects and never finishes the TLS handshake: closed after
//!   `handshake_timeout`;
//! - a client whose request headers trickle in (slowloris): closed after
//!   `header_read_timeout` (hyper's header read timeout). The same timer runs while a
//!   keep-alive connection waits for its next request, so idle connections close after
//!   it too; HTTP clients (Go's, and so kubectl's) reconnect transparently;
//! - too many connections at once: beyond `max_connections`, new connections are
//!   accepted and closed at once (see [`ListenLimits::max_connections`]).
//!
//! There is no overall request or response timeout, so watches (long chunked responses)
//! stream for as long as they last. Request bodies are not limited here: limit them in
//! the router (e.g. axum's `DefaultBodyLimit`).
//!
//! Handlers can learn the peer's address with the usual extractor,
//! `axum::extract::ConnectInfo<std::net::SocketAddr>`: it is inserted into every
//! request's extensions. Protocol upgrades (`Connection: Upgrade`, e.g. WebSockets) are
//! allowed on the connection, so handlers may use `hyper::upgrade::on`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

/// Limits that keep slow or hostile clients from tying the server up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenLimits {
    /// How long a new connection has to complete its TLS handshake (default 10 s).
    /// `Duration::ZERO` disables the limit.
    pub handshake_timeout: Duration,
    /// How long a client has to send a request's headers, counted from when the server
    /// starts waiting for them; on a keep-alive connection that includes the idle time
    /// between requests (default 10 s). `Duration::ZERO` disables the limit.
    pub header_read_timeout: Duration,
    /// How many connections may be open at once, handshaking ones included (default
    /// 1024; 0 = no limit). Beyond it, a new connection is accepted and closed
    /// immediately, without a handshake: the client fails fast and can retry, the
    /// kernel's accept queue keeps draining, and no connection waits unboundedly in it.
    pub max_connections: usize,
    /// Whether connections are kept open between requests (HTTP/1.1 keep-alive;
    /// default true).
    pub keep_alive: bool,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            keep_alive: true,
        }
    }
}

/// How long to pause accepting after an accept error that is not about one connection
/// (running out of file descriptors, say), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts TLS connections on `listener` and serves `router` over HTTP/1.1 on each
/// until `shutdown` resolves; then stops accepting (the listener is dropped, so new
/// connections are refused) and returns.
///
/// Each connection runs in its own task. A handshake that does not finish within
/// `limits.handshake_timeout`, or a request whose headers do not arrive within
/// `limits.header_read_timeout`, closes that connection only. Errors of one connection
/// are logged (`tracing::debug`) and never end the loop; neither do accept errors
/// (logged at `warn`, followed by a short pause). A connection whose client negotiated a
/// protocol other than HTTP/1.1 through ALPN (`h2`) is closed: configure `tls` to offer
/// `http/1.1` only.
///
/// On shutdown, open connections are told to finish gracefully: each completes the
/// request it is serving and then closes, idle ones close at once and handshakes in
/// progress are dropped. `serve_tls` does not wait for that: it returns at once, and a
/// response still streaming (a watch) goes on until it ends or the runtime is dropped.
///
/// The peer's address is in each request's extensions as
/// `axum::extract::ConnectInfo<SocketAddr>`.
///
/// Currently always returns `Ok(())`; the `io::Result` leaves room for errors that
/// should stop the server.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    limits: ListenLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let permits = match limits.max_connections {
        0 => Semaphore::MAX_PERMITS,
        n => n.min(Semaphore::MAX_PERMITS),
    };
    let slots = Arc::new(Semaphore::new(permits));
    // Never sent to: dropping the sender tells every connection to shut down.
    let (stop_tx, stop_rx) = watch::channel(());
    let limits = Arc::new(limits);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if per_connection_error(&e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; pausing");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max = permits, "connection limit reached; closing");
            drop(tcp);
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "setting TCP_NODELAY failed");
        }
        tokio::spawn(serve_connection(
            tcp,
            peer,
            acceptor.clone(),
            router.clone(),
            limits.clone(),
            stop_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    drop(stop_tx);
    Ok(())
}

/// Whether an accept error concerns only the connection being accepted.
fn per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Resolves with `fut`'s output, or `None` after `limit` (never, for a zero limit).
async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    if limit.is_zero() {
        Some(fut.await)
    } else {
        tokio::time::timeout(limit, fut).await.ok()
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    limits: Arc<ListenLimits>,
    mut stop: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) {
    let handshake = within(limits.handshake_timeout, acceptor.accept(tcp));
    let tls = tokio::select! {
        biased;
        _ = stop.changed() => return,
        result = handshake => match result {
            Some(Ok(tls)) => tls,
            Some(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            None => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
    };
    if let Some(alpn) = tls.get_ref().1.alpn_protocol() {
        if alpn != b"http/1.1" {
            tracing::debug!(
                %peer,
                alpn = %String::from_utf8_lossy(alpn),
                "client negotiated a protocol other than HTTP/1.1; closing"
            );
            return;
        }
    }

    let router = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.call(request)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(limits.keep_alive)
        .header_read_timeout(Some(limits.header_read_timeout).filter(|d| !d.is_zero()));
    let connection = builder
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, Bytes};
    use axum::routing::get;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::sync::{mpsc, oneshot};
    use tokio_rustls::client::TlsStream;

    #[allow(deprecated)] // rustls 0.23.48 deprecates it for lack of post-quantum key exchange
    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A server config for `localhost` and a client config trusting it.
    fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        (Arc::new(server), Arc::new(client))
    }

    /// A running server: its address, a way to stop it, and its task.
    struct Server {
        addr: SocketAddr,
        client: Arc<rustls::ClientConfig>,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<io::Result<()>>,
    }

    async fn start(router: Router, limits: ListenLimits) -> Server {
        let (server_tls, client) = tls_pair();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_tls(
            listener,
            server_tls,
            router,
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            client,
            stop: Some(stop),
            task,
        }
    }

    impl Server {
        async fn connect(&self) -> TlsStream<TcpStream> {
            let tcp = TcpStream::connect(self.addr).await.unwrap();
            let connector = tokio_rustls::TlsConnector::from(self.client.clone());
            connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap()
        }

        async fn shutdown(mut self) {
            let _ = self.stop.take().unwrap().send(());
            tokio::time::timeout(Duration::from_secs(5), self.task)
                .await
                .expect("serve_tls did not return")
                .unwrap()
                .unwrap();
        }
    }

    /// Reads until `needle` has arrived (or EOF / 5 s); returns everything read.
    async fn read_until<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, needle: &str) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(5);
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Whether the server closes `stream` within `limit` (EOF or an error).
    async fn closed_within<S: tokio::io::AsyncRead + Unpin>(
        stream: &mut S,
        limit: Duration,
    ) -> bool {
        let mut buf = [0u8; 1024];
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }

    fn hello_router() -> Router {
        Router::new().route(
            "/hello",
            get(
                |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { format!("hello {peer}") },
            ),
        )
    }

    fn short_limits() -> ListenLimits {
        ListenLimits {
            handshake_timeout: Duration::from_millis(400),
            header_read_timeout: Duration::from_millis(400),
            ..ListenLimits::default()
        }
    }

    const GET_HELLO: &[u8] = b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";

    #[tokio::test]
    async fn serves_a_handler_over_tls_with_the_peer_address() {
        let server = start(hello_router(), ListenLimits::default()).await;
        let mut tls = server.connect().await;
        let local = tls.get_ref().0.local_addr().unwrap();
        // Two requests on one keep-alive connection.
        for _ in 0..2 {
            tls.write_all(GET_HELLO).await.unwrap();
            let answer = read_until(&mut tls, &format!("hello {local}")).await;
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
            assert!(answer.ends_with(&format!("hello {local}")), "{answer}");
        }
        tls.write_all(b"GET /missing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until(&mut tls, "\u{0}never").await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_after_the_handshake_timeout() {
        let server = start(hello_router(), short_limits()).await;
        let started = Instant::now();
        let mut silent = TcpStream::connect(server.addr).await.unwrap();
        // Meanwhile another client is served.
        let mut tls = server.connect().await;
        tls.write_all(GET_HELLO).await.unwrap();
        assert!(read_until(&mut tls, "hello").await.contains("200 OK"));
        assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(350),
            "closed too early: {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(3),
            "closed too late: {waited:?}"
        );
        // A half-finished handshake (garbage instead of a ClientHello) is closed too.
        let mut garbage = TcpStream::connect(server.addr).await.unwrap();
        garbage.write_all(b"\x16\x03\x01\x00").await.unwrap();
        assert!(closed_within(&mut garbage, Duration::from_secs(3)).await);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn slow_headers_are_cut_off() {
        let server = start(hello_router(), short_limits()).await;
        let tls = server.connect().await;
        let (mut reader, mut writer) = tokio::io::split(tls);
        let started = Instant::now();
        let trickle = tokio::spawn(async move {
            // One byte every 100 ms: the headers would take 4 s.
            for byte in GET_HELLO.iter().cycle().take(40) {
                if writer.write_all(&[*byte]).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(3), reader.read_to_end(&mut answer))
            .await
            .is_ok();
        assert!(closed, "the slow client was not closed");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(350),
            "closed too early: {waited:?}"
        );
        assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
        trickle.abort();
        // Others are still served.
        let mut tls = server.connect().await;
        tls.write_all(GET_HELLO).await.unwrap();
        assert!(read_until(&mut tls, "hello").await.contains("200 OK"));
        server.shutdown().await;
    }

    /// A `Stream` of chunks fed by a channel (futures-core only, no helper crates).
    struct ChunkStream(mpsc::Receiver<Bytes>);

    impl futures_core::Stream for ChunkStream {
        type Item = Result<Bytes, std::convert::Infallible>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.0.poll_recv(cx).map(|chunk| chunk.map(Ok))
        }
    }

    #[tokio::test]
    async fn a_streaming_response_arrives_chunk_by_chunk() {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let rx = Arc::new(Mutex::new(Some(rx)));
        let router = Router::new().route(
            "/watch",
            get(move || {
                let rx = rx.lock().unwrap().take().expect("one watch");
                async move { Body::from_stream(ChunkStream(rx)) }
            }),
        );
        // Short header timeout: it must not cut a long response.
        let server = start(router, short_limits()).await;
        let mut tls = server.connect().await;
        tls.write_all(b"GET /watch HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        tx.send(Bytes::from_static(b"{\"event\":1}\n"))
            .await
            .unwrap();
        let first = read_until(&mut tls, "{\"event\":1}").await;
        assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
        assert!(
            first
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{first}"
        );
        assert!(!first.contains("event\":2"));
        // Longer than the header timeout between chunks.
        tokio::time::sleep(Duration::from_millis(800)).await;
        tx.send(Bytes::from_static(b"{\"event\":2}\n"))
            .await
            .unwrap();
        let second = read_until(&mut tls, "{\"event\":2}").await;
        assert!(second.contains("{\"event\":2}"), "{second}");
        assert!(!second.contains("event\":1"), "chunk 1 sent twice");
        drop(tx);
        let end = read_until(&mut tls, "0\r\n\r\n").await;
        assert!(end.ends_with("0\r\n\r\n"), "{end:?}");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_closed_at_once() {
        let limits = ListenLimits {
            max_connections: 1,
            ..ListenLimits::default()
        };
        let server = start(hello_router(), limits).await;
        let mut first = server.connect().await;
        first.write_all(GET_HELLO).await.unwrap();
        assert!(read_until(&mut first, "hello").await.contains("200 OK"));
        // The first holds the only slot (keep-alive): the second is closed at once,
        // long before any timeout.
        let started = Instant::now();
        let mut second = TcpStream::connect(server.addr).await.unwrap();
        assert!(closed_within(&mut second, Duration::from_secs(2)).await);
        assert!(started.elapsed() < Duration::from_secs(2));
        // Once the first leaves, new connections are served again.
        drop(first);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let tcp = TcpStream::connect(server.addr).await.unwrap();
            let connector = tokio_rustls::TlsConnector::from(server.client.clone());
            if let Ok(mut tls) = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
            {
                if tls.write_all(GET_HELLO).await.is_ok()
                    && read_until(&mut tls, "hello").await.contains("200 OK")
                {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "slot never freed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_returns_and_closes_idle_connections() {
        let server = start(hello_router(), ListenLimits::default()).await;
        let addr = server.addr;
        let mut idle = server.connect().await;
        idle.write_all(GET_HELLO).await.unwrap();
        assert!(read_until(&mut idle, "hello").await.contains("200 OK"));
        let mut handshaking = TcpStream::connect(addr).await.unwrap();
        server.shutdown().await;
        // The idle keep-alive connection and the one that never shook hands are closed,
        // and no new connection is accepted.
        assert!(closed_within(&mut idle, Duration::from_secs(3)).await);
        assert!(closed_within(&mut handshaking, Duration::from_secs(3)).await);
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn an_in_flight_response_completes_after_shutdown() {
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let release_rx = Arc::new(Mutex::new(Some(release_rx)));
        let router = Router::new().route(
            "/slow",
            get(move || {
                let rx = release_rx.lock().unwrap().take().expect("one request");
                async move {
                    let _ = rx.await;
                    "done"
                }
            }),
        );
        let server = start(router, ListenLimits::default()).await;
        let mut tls = server.connect().await;
        tls.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.shutdown().await;
        release_tx.send(()).unwrap();
        let answer = read_until(&mut tls, "done").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        assert!(closed_within(&mut tls, Duration::from_secs(3)).await);
    }
}
