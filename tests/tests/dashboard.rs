//! The trainer's dashboard over HTTP, as its forms post: moving the lab clock runs what fell
//! due on Connect's schedule, even when the move outlives the trainer's own token (tokens
//! live on the lab clock).

use hybrid_lab_tests::TestLab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_on_the_dashboards_clock_runs_the_sync_cycles_that_fell_due() {
    let t = TestLab::start_with(|c| c.engine = true).await;
    let base = t.info().tenant.https.clone();
    let http = t.http_no_redirects();
    let cookie = t.admin_cookie().await;
    let cycles = || async {
        let (_, events) = t.lab_call("GET", "/lab/engine/events", None).await;
        events["value"].as_array().unwrap().iter().filter(|e| e["id"] == 9102).count()
    };
    let before = cycles().await;
    let r = http
        .post(format!("{base}/portal/lab/clock"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .form(&[("advance", "1d")])
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/portal/lab"));
    assert!(cycles().await > before, "the sync cycle that fell due ran (SyncCycleCompleted)");
    // and the trainer is still signed in on the dashboard the form returns to
    let r = http.get(format!("{base}/portal/lab")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, clock) = t.lab_call("GET", "/lab/clock", None).await;
    assert_eq!(clock["now"], "2026-01-06T09:00:00Z");
}

/// An unknown page under /portal answers as a page (404, HTML, a way back), not with the
/// tenant's Graph error; the pages that exist still answer, and Graph keeps its JSON errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_portal_page_is_a_page_not_a_graph_error() {
    let t = TestLab::start().await;
    let base = t.info().tenant.https.clone();
    let r = t.http().get(format!("{base}/portal/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{:?}", r.headers());
    let body = r.text().await.unwrap();
    assert!(
        body.contains("This page does not exist") && body.contains("/portal/no/such/page") && body.contains("href=\"/portal\""),
        "{body}"
    );
    for page in ["/portal", "/portal/sspr", "/portal/signin", "/portal/admin"] {
        let r = t.http_no_redirects().get(format!("{base}{page}")).send().await.unwrap();
        assert!(r.status().is_success() || r.status().is_redirection(), "{page}: {}", r.status());
    }
    let r = t.http().get(format!("{base}/v1.0/no-such-thing")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "Graph's errors stay OData JSON");
    t.stop().await;
}

/// Two labs on one machine, open in one browser: cookies are the host's whatever the port,
/// so the browser sends both labs' cookies to each. Each lab's session cookie carries its own
/// port in its name: both stay signed in, neither overwrites the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_labs_in_one_browser_keep_their_own_sessions() {
    let (a, b) = (TestLab::start().await, TestLab::start().await);
    let (ca, cb) = (a.admin_cookie().await, b.admin_cookie().await);
    let name = |c: &str| c.split('=').next().unwrap().to_string();
    assert_ne!(name(&ca), name(&cb), "{ca} / {cb}");
    let both = format!("{ca}; {cb}");
    for t in [&a, &b] {
        let r = t.http_no_redirects().get(format!("{}/portal/admin", t.info().tenant.https)).header("cookie", &both).send().await.unwrap();
        assert_eq!(r.status(), 200, "signed in at {}", t.info().tenant.https);
    }
    a.stop().await;
    b.stop().await;
}
