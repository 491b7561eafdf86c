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
    assert!(note.contains("the current one or one of the user's recent passwords (pwdHistoryLength"), "{note}");
    // a reset that works has no note
    let page = reset("Note-Free-Pass-77").await;
    let result = text(&page, "result").expect("the reset worked");
    assert!(result.contains("written back") && text(&page, "lab-note").is_none(), "{result}");
    t.stop().await;
}

/// Issue 32: a refusal by a fine-grained policy was explained as the domain's ("shorter than
/// the domain's minimum length") although the domain's 7 characters were met. The note names
/// the user's policy, and the dashboard's view of the user says which one applies
/// (msDS-ResultantPSO).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fine_grained_policys_refusal_is_not_blamed_on_the_domain() {
    let t = TestLab::start_with(|c| c.engine = true).await;
    let pso = "CN=Long Passwords,CN=Password Settings Container,CN=System,DC=testlab,DC=example";
    let mut l = t.admin(hybrid_lab_tests::Via::Ldaps).await;
    let attrs: Vec<(&str, std::collections::HashSet<&str>)> = vec![
        ("objectClass", ["msDS-PasswordSettings"].into()),
        ("msDS-PasswordSettingsPrecedence", ["10"].into()),
        ("msDS-PasswordReversibleEncryptionEnabled", ["FALSE"].into()),
        ("msDS-PasswordHistoryLength", ["5"].into()),
        ("msDS-PasswordComplexityEnabled", ["TRUE"].into()),
        ("msDS-MinimumPasswordLength", ["14"].into()),
        ("msDS-MinimumPasswordAge", ["0"].into()),
        ("msDS-MaximumPasswordAge", ["-36288000000000"].into()),
        ("msDS-LockoutThreshold", ["0"].into()),
        ("msDS-LockoutObservationWindow", ["-18000000000"].into()),
        ("msDS-LockoutDuration", ["-18000000000"].into()),
        ("msDS-PSOAppliesTo", ["CN=User1,OU=Lab Users,DC=testlab,DC=example"].into()),
    ];
    l.add(pso, attrs).await.unwrap().success().unwrap();
    let admin = t.admin_token().await;
    // ten characters: the domain's 7 are met, the PSO's 14 are not
    assert_eq!(t.graph_reset(&admin, "user1@testlab.example", "Ten-Char-1").await, "failed");
    let (_, events) = t.lab_call("GET", "/lab/engine/events", None).await;
    let note = events["value"].as_array().unwrap().iter().rev().find(|e| e["id"] == 6329).unwrap()["message"].as_str().unwrap().to_string();
    assert!(note.contains("minimum length of the user's policy") && note.contains("msDS-ResultantPSO"), "{note}");
    assert!(!note.contains("shorter than the domain's"), "{note}");
    let cookie = t.admin_cookie().await;
    let page = t.http().get(format!("{}/portal/lab?user=User1", t.info().tenant.https)).header("cookie", &cookie).send().await.unwrap();
    let html = scraper::Html::parse_document(&page.text().await.unwrap());
    let rows: Vec<String> = html.select(&scraper::Selector::parse("#user-attrs tr").unwrap()).map(|r| r.text().collect()).collect();
    let row = rows.iter().find(|r| r.starts_with("msDS-ResultantPSO")).unwrap_or_else(|| panic!("{rows:#?}"));
    assert!(row.contains(pso) && row.contains("a fine-grained password policy applies"), "{row}");
    t.stop().await;
}
