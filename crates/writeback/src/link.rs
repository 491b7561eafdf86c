//! The outbound link to the tenant's relay: kept while the service runs, reconnected with
//! backoff, heartbeats; each request handed to [`super::ad`].

use super::*;

/// The service loop: keep a relay link while running; reconnect with backoff.
pub(crate) async fn run(inner: Arc<Inner>) {
    let mut backoff = Duration::from_millis(50);
    let mut warned = false;
    let mut shutdown = inner.shutdown.subscribe();
    let mut state = inner.changed.subscribe();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if !inner.running.load(Ordering::SeqCst) {
            tokio::select! {
                _ = state.changed() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        match connect(&inner).await {
            Ok(ws) => {
                backoff = Duration::from_millis(50);
                warned = false;
                session(&inner, ws, &mut shutdown).await;
                inner.set_connected(false);
            }
            Err(e) => {
                if !warned {
                    inner.log.log(32002, format!("Error connecting to the relay: {e}"), None);
                    warned = true;
                } else {
                    inner.log.log(32014, "Retrying the relay connection.", None);
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

pub(crate) type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(inner: &Inner) -> Result<Ws, Error> {
    dial(&inner.reg.relay_url, &inner.reg.credential, &inner.tls).await
}

/// A WebSocket to the tenant over TLS, with a credential (the relay's, or an agent's queue).
pub(crate) async fn dial(url: &str, credential: &str, tls: &Arc<rustls::ClientConfig>) -> Result<Ws, Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let rest = url.strip_prefix("wss://").ok_or_else(|| Error(format!("not a wss URL: {url}")))?;
    let hostport = rest.split('/').next().unwrap_or("");
    let host = hostport.rsplit_once(':').map(|(h, _)| h).unwrap_or(hostport).to_string();
    // (`localhost` is the loopback address, RFC 6761: connected without a resolver call)
    let tcp = match hostport.strip_prefix("localhost:").and_then(|p| p.parse::<u16>().ok()) {
        Some(port) => tokio::net::TcpStream::connect(std::net::SocketAddr::new(LOCALHOST.ip(), port)).await,
        None => tokio::net::TcpStream::connect(hostport).await,
    }
    .map_err(|e| Error(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| Error(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await.map_err(|e| Error(format!("TLS: {e}")))?;
    let mut req = url.into_client_request().map_err(|e| Error(e.to_string()))?;
    let auth = format!("Bearer {credential}");
    req.headers_mut().insert("authorization", auth.parse().map_err(|_| Error("credential".into()))?);
    let (ws, _) = tokio_tungstenite::client_async(req, tls).await.map_err(|e| Error(e.to_string()))?;
    Ok(ws)
}

/// One relay link: heartbeats, requests in, answers out. When it ends (a stop, the lab
/// shutting down, the tenant closing it) its door closes first: requests that had not
/// committed write nothing, and those writing are waited for (at most their grace) so that
/// their answers still go out before the link closes.
pub(crate) async fn session(inner: &Arc<Inner>, ws: Ws, shutdown: &mut watch::Receiver<bool>) {
    let (mut sink, mut stream) = ws.split();
    let (answers, mut outgoing) = mpsc::unbounded_channel::<ToTenant>();
    let beat = serde_json::to_string(&ToTenant::Heartbeat).unwrap_or_default();
    if sink.send(Message::Text(beat.clone().into())).await.is_err() {
        return;
    }
    let link = CancellationToken::new();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(relay::HEARTBEAT_SECONDS));
    heartbeat.tick().await;
    let mut acked = false;
    let mut sink_open = true;
    let mut state = inner.changed.subscribe();
    // (a stop made before we subscribed is looked at on the first turn)
    state.mark_changed();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = state.changed() => {
                if !inner.running.load(Ordering::SeqCst) {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                inner.log.log(31019, "Heartbeat sent to the relay.", None);
                if sink.send(Message::Text(beat.clone().into())).await.is_err() {
                    sink_open = false;
                    break;
                }
            }
            out = outgoing.recv() => {
                let Some(msg) = out else { break };
                let text = serde_json::to_string(&msg).unwrap_or_default();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    sink_open = false;
                    break;
                }
            }
            inc = stream.next() => {
                let text = match inc {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    _ => {
                        sink_open = false;
                        break;
                    }
                };
                match serde_json::from_str::<ToEngine>(&text) {
                    Ok(ToEngine::HeartbeatAck) => {
                        if !acked {
                            // the tenant has seen us: the link is up
                            acked = true;
                            inner.set_connected(true);
                        }
                    }
                    Ok(ToEngine::Request { id, anchor, user_principal_name, distinguished_name, operation, deadline_ms }) => {
                        let (inner, answers, link) = (inner.clone(), answers.clone(), link.clone());
                        inner.in_flight.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(async move {
                            let dn = distinguished_name.as_deref();
                            let req = Request { id, anchor: &anchor, dn, upn: &user_principal_name, op: operation, deadline_ms };
                            let outcome = handle(&inner, &link, req).await;
                            let _ = answers.send(ToTenant::Answer { id, outcome });
                            // (after the answer is queued: a closing link waits for this)
                            if inner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                                inner.drained.notify_waiters();
                            }
                        });
                    }
                    Ok(ToEngine::Sync { id, policy_type }) => {
                        let (engine, answers) = (Engine { inner: inner.clone() }, answers.clone());
                        tokio::spawn(async move {
                            let report = engine.sync(policy_type).await.unwrap_or_else(|e| relay::SyncReport {
                                policy_type: Some(policy_type),
                                errors: vec![relay::SyncError { code: "SyncCycleFailed".into(), distinguished_name: String::new(), message: e.0 }],
                                ..Default::default()
                            });
                            let _ = answers.send(ToTenant::SyncDone { id, report });
                        });
                    }
                    Err(e) => inner.log.log(32008, format!("An invalid message from the relay: {e}"), None),
                }
            }
        }
    }
    inner.close_link(&link);
    if sink_open {
        // what was written to AD is answered before the link goes: the tenant must never
        // report a failure for a password AD took (and what was turned away is said so)
        let grace = Duration::from_millis(relay::WRITE_GRACE_MS + 500);
        inner.drain(grace).await;
        while let Ok(msg) = outgoing.try_recv() {
            if let ToTenant::Answer { .. } = msg {
                let text = serde_json::to_string(&msg).unwrap_or_default();
                if tokio::time::timeout(grace, sink.send(Message::Text(text.into()))).await.map(|r| r.is_err()).unwrap_or(true) {
                    break;
                }
            }
        }
    }
    inner.set_connected(false);
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}
