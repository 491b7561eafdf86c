//! When on-premises policy refuses a written-back password, Entra's answers stay Entra's,
//! and the lab's own surfaces say AD's reason in plain words (issue #16, item 1): Connect's
//! event log (ADSync 6329's `[lab note: …]`) and the admin center's lab note.

use hybrid_lab_tests::TestLab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_center_says_why_ad_refused_a_reset_beside_entras_answer() {
    let t = TestLab::start_with(|c| c.engine = true).await;
    let base = t.info().tenant.https.clone();
    let http = t.http_no_redirects();
    let cookie = t.admin_cookie().await;
    let admin = t.admin_token().await;
    let (_, u) = t.call("GET", "/v1.0/users/user1@testlab.example?$select=id", Some(&admin), None).await;
    let id = u["id"].as_str().unwrap();
    let reset = |password: &'static str| {
        let (http, cookie, base) = (http.clone(), cookie.clone(), base.clone());
        async move {
            let r = http
                .post(format!("{base}/portal/admin/users/{id}/reset"))
                .header("cookie", cookie)
                .form(&[("new_password", password)])
                .send()
                .await
                .unwrap();
            scraper::Html::parse_document(&r.text().await.unwrap())
        }
    };
    let text = |page: &scraper::Html, id: &str| {
        page.select(&scraper::Selector::parse(&format!("#{id}")).unwrap()).next().map(|e| e.text().collect::<String>())
    };
    // User1's current password: the cloud takes it, AD's history (with the policy-hints
    // control writeback sends) does not
    let page = reset(t.password_of("User1").leak()).await;
    let error = text(&page, "error").expect("the reset failed");
    let note = text(&page, "lab-note").expect("a lab note");
    assert!(error.contains("could not be reset") && !error.contains("pwdHistoryLength"), "Entra's words: {error}");
    assert!(note.contains("the current one or one of the user's recent passwords (pwdHistoryLength)"), "{note}");
    // a reset that works has no note
    let page = reset("Note-Free-Pass-77").await;
    let result = text(&page, "result").expect("the reset worked");
    assert!(result.contains("written back") && text(&page, "lab-note").is_none(), "{result}");
    t.stop().await;
}
