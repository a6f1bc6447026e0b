//! The server's connections: each one's reads are recorded so requests can
//! carry the header names' original case (REST API events need it, see
//! `strato_gateway::header_case`), and each request learns its client's
//! address (`requestContext.identity.sourceIp`).

use std::convert::Infallible;
use std::future::Ready;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use strato_gateway::header_case::{HeadRecorder, RecordingStream};
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

/// A TCP listener whose connections record what they read. Python's and
/// Java's HTTP clients stall 40 ms per request on Nagle's algorithm unless
/// the server disables it, so every connection gets `TCP_NODELAY`.
pub struct RecordingListener(pub TcpListener);

impl Listener for RecordingListener {
    type Io = RecordingStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        let _ = stream.set_nodelay(true);
        (RecordingStream::new(stream), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Listener::local_addr(&self.0)
    }
}

/// Makes one [`ConnectionService`] per accepted connection.
#[derive(Clone)]
pub struct MakeConnectionService(pub Router);

impl Service<IncomingStream<'_, RecordingListener>> for MakeConnectionService {
    type Response = ConnectionService;
    type Error = Infallible;
    type Future = Ready<Result<ConnectionService, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, RecordingListener>) -> Self::Future {
        std::future::ready(Ok(ConnectionService {
            router: self.0.clone(),
            recorder: stream.io().recorder().clone(),
            remote: *stream.remote_addr(),
        }))
    }
}

/// The router, for one connection's requests.
#[derive(Clone)]
pub struct ConnectionService {
    router: Router,
    recorder: HeadRecorder,
    remote: SocketAddr,
}

impl Service<Request> for ConnectionService {
    type Response = <Router as Service<Request>>::Response;
    type Error = Infallible;
    type Future = <Router as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Router as Service<Request>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if let Some(case) = self
            .recorder
            .take(request.method().as_str(), request.headers())
        {
            request.extensions_mut().insert(case);
        }
        request.extensions_mut().insert(ConnectInfo(self.remote));
        self.router.call(request)
    }
}
