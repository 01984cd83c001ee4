//! The accept loop, with the limits a public listener needs: request headers must
//! arrive within [`HEADER_TIMEOUT`] (slowloris), at most `ROTOR_MAX_CONNECTIONS` connections
//! are open at once (further ones wait in the kernel's backlog), and on shutdown the listener
//! closes while open connections finish their requests.

use crate::app::Front;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A connection that has not sent complete request headers in this time is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `front` on `listener` until `shutdown` completes; then stops accepting and waits up
/// to `grace` for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    front: Front,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let front = Arc::new(front);
    let slots = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small writes (stream chunks) go out at once instead of waiting for delayed ACKs.
        let _ = tcp.set_nodelay(true);
        let front = front.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            front.call(req.map(Body::new), peer)
        });
        let connection = builder
            .serve_connection(TokioIo::new(tcp), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutdown requested: finishing in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "in-flight requests still running after {}s; exiting",
            grace.as_secs()
        );
    }
}
