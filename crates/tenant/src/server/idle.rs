//! A connection's last activity, so a listener can close connections that sit idle (a
//! client that opened a keep-alive connection, or half a request, and went away).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Milliseconds since `start` at the last byte read or written.
/// Requests being answered do not count as idle time (a reset may wait for on-premises).
#[derive(Clone)]
pub struct Activity {
    start: Instant,
    last: Arc<AtomicU64>,
    busy: Arc<std::sync::atomic::AtomicUsize>,
}

/// A request being answered; the connection is not idle while one lives.
pub struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    pub fn new() -> (Activity, Activity) {
        let a = Activity { start: Instant::now(), last: Arc::default(), busy: Arc::default() };
        (a.clone(), a)
    }

    pub fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    fn touch(&self) {
        self.last.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `limit` (looks a few times per limit).
    pub async fn idle(&self, limit: Duration) {
        loop {
            if self.busy.load(Ordering::SeqCst) > 0 {
                self.touch();
            }
            let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let due = last + limit;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

/// An I/O stream whose reads and writes count as activity. (Once a connection is upgraded
/// to a WebSocket the connection's future has ended, so the watch ends with it.)
pub struct Watched<S> {
    inner: S,
    activity: Activity,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Activity) -> Watched<S> {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
