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

fn rows(html: &str, table: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("#{table} tbody tr")).unwrap();
    doc.select(&sel).map(|r| r.text().collect::<Vec<_>>().join(" ")).collect()
}

/// Issue 32, item 2: the evidence stays findable. The dashboard's own LDAP reads (a
/// reload reads AD twice) no longer fill the DC's operations: left out and counted, shown
/// marked when asked for; the event log filters by ID, level and tracking ID, and the
/// filter survives the live reload (it is in the address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_own_reads_stay_out_and_events_filter_by_id_level_and_tracking_id() {
    let t = TestLab::start_with(|c| c.engine = true).await;
    let base = t.info().tenant.https.clone();
    let cookie = t.admin_cookie().await;
    let page = |q: &'static str| {
        let (http, base, cookie) = (t.http(), base.clone(), cookie.clone());
        async move {
            let r = http.get(format!("{base}/portal/lab{q}")).header("cookie", &cookie).send().await.unwrap();
            assert_eq!(r.status(), 200, "{q}");
            r.text().await.unwrap()
        }
    };
    // a refused reset: Connect's 31001, 33004, 6329, 31003 under one tracking ID
    assert_eq!(
        t.lab_call("POST", "/lab/adds/rights", Some(serde_json::json!({"action": "revoke", "right": "Reset Password"}))).await.0,
        200
    );
    let admin = t.admin_token().await;
    assert_eq!(t.graph_reset(&admin, "user1@testlab.example", "Refused-Pass-77").await, "failed", "refused on-premises");
    // a trainee's own read, from ldapsearch or ldap3, as the administrator
    let mut l = t.admin(hybrid_lab_tests::Via::Ldaps).await;
    l.search("", ldap3::Scope::Base, "(objectClass=*)", vec!["dnsHostName"]).await.unwrap().success().unwrap();
    for _ in 0..5 {
        page("").await;
    }
    let html = page("").await;
    let ops = rows(&html, "operations");
    assert!(ops.iter().any(|r| r.contains("search (rootDSE)") && r.contains("dnsHostName")), "the trainee's own read stays: {ops:#?}");
    assert!(!ops.iter().any(|r| r.contains("(the lab's pages)")), "{ops:#?}");
    assert!(ops.iter().any(|r| r.contains("MSOL_") && r.contains("unicodePwd")), "the connector's refused write is in view: {ops:#?}");
    let doc = scraper::Html::parse_document(&html);
    let hidden = doc.select(&scraper::Selector::parse("#own-reads-hidden").unwrap()).next().unwrap().text().collect::<String>();
    let n: usize = hidden.split_whitespace().next().unwrap().parse().unwrap();
    assert!(n >= 12, "six looks, each a bind and a read or more: {hidden}");
    let shown = rows(&page("?reads=show").await, "operations");
    assert!(shown.iter().filter(|r| r.contains("(the lab's pages)")).count() >= 12, "{shown:#?}");

    // the events: by ID, by level, by the tracking ID of the refused reset
    let (_, events) = t.lab_call("GET", "/lab/engine/events", None).await;
    let tracking =
        events["value"].as_array().unwrap().iter().find(|e| e["id"] == 33004).unwrap()["trackingId"].as_str().unwrap().to_string();
    let by_id = rows(&page("?id=33004%2C+6329").await, "events");
    assert_eq!(by_id.len(), 2, "{by_id:#?}");
    assert!(by_id.iter().all(|r| r.contains("33004") || r.contains("6329")));
    let errors = rows(&page("?level=Error").await, "events");
    assert!(!errors.is_empty() && errors.iter().all(|r| r.contains("Error")), "{errors:#?}");
    let q: &'static str = Box::leak(format!("?tracking={}", &tracking[..8]).into_boxed_str());
    let one = rows(&page(q).await, "events");
    let ids: Vec<&str> = ["31009", "33004", "6329", "31011"].into_iter().filter(|id| one.iter().any(|r| r.contains(id))).collect();
    assert!(one.len() >= 3 && ids.contains(&"33004") && ids.contains(&"6329"), "one operation's events: {one:#?}");
    assert!(one.iter().all(|r| r.contains(&tracking)), "{one:#?}");
    let bad = scraper::Html::parse_document(&page("?id=33004x").await);
    let said = bad.select(&scraper::Selector::parse("#error").unwrap()).next().map(|e| e.text().collect::<String>()).unwrap_or_default();
    assert!(said.contains("\"33004x\" is not an event ID"), "a clear error for a bad filter: {said:?}");
    t.stop().await;
}

/// Issue 32, item 7: the trainer's reset button asks the program running the lab to start it
/// again (`lab up` does: lab/tests/classroom.rs); a lab whose program cannot (a test's, a
/// fixture's) offers no button and answers 501, never a 202 that nothing acts on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reset_button_asks_the_labs_program_and_only_where_it_can_reset() {
    for resettable in [false, true] {
        let t = TestLab::start_with(|c| c.resettable = resettable).await;
        let base = t.info().tenant.https.clone();
        let cookie = t.admin_cookie().await;
        let page = t.http().get(format!("{base}/portal/lab")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
        assert_eq!(page.contains("id=\"reset-lab\""), resettable, "the button only where the lab can reset");
        let (status, body) = t.lab_call("POST", "/lab/reset", None).await;
        if !resettable {
            assert_eq!((status, body["error"]["code"].as_str()), (501, Some("NotSupported")), "{body}");
            t.stop().await;
            continue;
        }
        assert_eq!(status, 202, "{body}");
        tokio::time::timeout(std::time::Duration::from_secs(5), t.lab.reset_requested()).await.expect("the program is told");
        // the button's page comes first (a reset asked for at once would stop the lab before
        // the page reached the browser), then the page asks for the reset
        let post = |path: &'static str| {
            let (http, cookie, base) = (t.http_no_redirects(), cookie.clone(), base.clone());
            async move { http.post(format!("{base}{path}")).header("cookie", cookie).header("origin", &base).send().await.unwrap() }
        };
        let r = post("/portal/lab/reset").await;
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(page.contains("The lab is resetting") && page.contains("/portal/lab/reset/now"));
        // (a request made would have left its permit: it would be ready now)
        assert!(futures::FutureExt::now_or_never(t.lab.reset_requested()).is_none(), "not before the page asks");
        assert_eq!(post("/portal/lab/reset/now").await.status(), 202);
        tokio::time::timeout(std::time::Duration::from_secs(5), t.lab.reset_requested()).await.expect("the page tells it");
        t.stop().await;
    }
}
