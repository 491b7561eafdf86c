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
    /// Requests answered on the connection.
    served: Arc<AtomicU64>,
}

/// A request being answered; the connection is not idle while one lives.
pub struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.served.fetch_add(1, Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    pub fn new() -> (Activity, Activity) {
        let a = Activity { start: Instant::now(), last: Arc::default(), busy: Arc::default(), served: Arc::default() };
        (a.clone(), a)
    }

    pub fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Which of a full listener's connections goes to make room (None: every one is in the
    /// middle of a request). First the oldest that has never had a request answered — a TLS
    /// handshake or headers not finished, or nothing sent at all: what a client holding
    /// connections open looks like; then the one idle longest. A request being answered is
    /// never cut.
    pub fn to_shed<'a, K: Copy>(open: impl Iterator<Item = (K, u64, &'a Activity)>) -> Option<K> {
        open.filter(|(_, _, a)| a.busy.load(Ordering::SeqCst) == 0)
            .min_by_key(|(_, opened, a)| (a.served.load(Ordering::Relaxed) > 0, a.last.load(Ordering::Relaxed), *opened))
            .map(|(k, _, _)| k)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_listener_sheds_a_connection_never_served_first_then_the_idlest_and_never_a_busy_one() {
        let conns: Vec<Activity> = (0..4).map(|_| Activity::new().0).collect();
        let open = || conns.iter().enumerate().map(|(i, a)| (i, i as u64, a));
        // nothing served yet: the oldest
        assert_eq!(Activity::to_shed(open()), Some(0));
        // 0 and 1 have had answers; 2 and 3 have not: the older of those
        for a in &conns[..2] {
            drop(a.busy());
        }
        assert_eq!(Activity::to_shed(open()), Some(2));
        // a connection mid-request is never cut, even one never served
        let b2 = conns[2].busy();
        let b3 = conns[3].busy();
        conns[1].last.store(5, Ordering::Relaxed);
        conns[0].last.store(9, Ordering::Relaxed);
        assert_eq!(Activity::to_shed(open()), Some(1), "of the served ones, the one idle longest");
        let (b0, b1) = (conns[0].busy(), conns[1].busy());
        assert_eq!(Activity::to_shed(open()), None, "all busy: the new connection is refused instead");
        drop((b0, b1, b2, b3));
    }
}
