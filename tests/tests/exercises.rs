//! Every shipped exercise (exercises/*.yaml), end to end: the lab set up as it says, nothing
//! ticked at the start, a wrong answer refused, then the trainer's solution played over the
//! lab's sockets and the right answers given on the dashboard — and the checklist, read as
//! the dashboard reads it, says every task is done. A shipped exercise is known solvable.

use hybrid_lab_tests::TestLab;
use serde_json::Value;

fn exercises() -> Vec<(String, std::path::PathBuf)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../exercises");
    scenario::exercise::discover(&dir).expect("exercises/")
}

async fn checklist(t: &TestLab, cookie: &str) -> Value {
    let r = t.http().get(format!("{}/portal/lab/exercise", t.info().tenant.https)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn answer(t: &TestLab, cookie: &str, task: usize, text: &str) {
    let r = t
        .http_no_redirects()
        .post(format!("{}/portal/lab/exercise/answer", t.info().tenant.https))
        .header("cookie", cookie)
        .form(&[("task", task.to_string().as_str()), ("answer", text)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the answer goes back to the dashboard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_exercise_can_be_solved_and_its_checklist_ticks() {
    let all = exercises();
    assert!(all.len() >= 4, "the tutorial and at least three more: {all:?}");
    for (name, path) in all {
        let x = scenario::exercise::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let questions: Vec<(usize, String)> = x
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                t.value.done_when.iter().find_map(|c| match c {
                    portal::exercise::Check::Answer { accept, .. } => Some((i, accept[0].clone())),
                    _ => None,
                })
            })
            .collect();
        let x_hints: Vec<usize> = x.tasks.iter().map(|t| t.value.hints.len()).collect();
        let t = TestLab::start_with(|c| scenario::exercise::configure(c, &x)).await;
        let solution = scenario::exercise::begin(&t.lab, x).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let cookie = t.admin_cookie().await;
        let before = checklist(&t, &cookie).await;
        let tasks = before["tasks"].as_array().unwrap();
        assert!(tasks.iter().all(|t| t["done"] == false), "{name}: nothing is done before the trainee starts: {before}");
        if let Some((i, _)) = questions.first() {
            answer(&t, &cookie, *i, "no idea").await;
            let v = checklist(&t, &cookie).await;
            assert_eq!((v["tasks"][i]["done"].clone(), v["tasks"][i]["wrong_answer"].clone()), (false.into(), "no idea".into()), "{name}");
            // the dashboard says so where a screen reader announces it
            let page = t.http().get(format!("{}/portal/lab", t.info().tenant.https)).header("cookie", &cookie).send().await.unwrap();
            let html = scraper::Html::parse_document(&page.text().await.unwrap());
            let wrong = scraper::Selector::parse(&format!("#answer-{}-wrong", i + 1)).unwrap();
            let said = html.select(&wrong).next().unwrap_or_else(|| panic!("{name}: the wrong answer shown"));
            assert_eq!(said.value().attr("role"), Some("alert"), "{name}");
            assert!(said.text().collect::<String>().contains("no idea"), "{name}");
        }
        // every hint shown, as a trainee asks for them one by one: its `code` is code, never a
        // raw backtick
        for (i, task) in x_hints.iter().enumerate() {
            for _ in 0..*task {
                let r = t
                    .http_no_redirects()
                    .post(format!("{}/portal/lab/exercise/hint", t.info().tenant.https))
                    .header("cookie", &cookie)
                    .form(&[("task", i.to_string())])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 303);
            }
        }
        let page = t.http().get(format!("{}/portal/lab", t.info().tenant.https)).header("cookie", &cookie).send().await.unwrap();
        let html = scraper::Html::parse_document(&page.text().await.unwrap());
        let shown: Vec<String> = html.select(&scraper::Selector::parse(".hint-text").unwrap()).map(|h| h.text().collect()).collect();
        assert_eq!(shown.len(), x_hints.iter().sum::<usize>(), "{name}: every hint shown once asked for");
        assert!(shown.iter().all(|h| !h.contains('`')), "{name}: {shown:?}");
        scenario::exercise::play_solution(&t.lab, &solution).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, right) in &questions {
            // a sentence around the answer, or a list of guesses, is not the answer
            answer(&t, &cookie, *i, &format!("I think it is {right}")).await;
            answer(&t, &cookie, *i, &format!("{right} 31015 33004 adminCount")).await;
            let v = checklist(&t, &cookie).await;
            assert_eq!(v["tasks"][i]["done"], false, "{name}: an answer that only contains {right:?}");
            // the answer itself, as a trainee types it: case, spaces and a full stop aside
            answer(&t, &cookie, *i, &format!("  {}. ", right.to_lowercase())).await;
        }
        let after = checklist(&t, &cookie).await;
        // the trainer sees how many answers each question took (the first question had one
        // more, "no idea")
        for (n, (i, _)) in questions.iter().enumerate() {
            assert_eq!(after["tasks"][i]["tries"], if n == 0 { 4 } else { 3 }, "{name}: {after}");
        }
        let open: Vec<&Value> = after["tasks"].as_array().unwrap().iter().filter(|t| t["done"] != true).map(|t| &t["title"]).collect();
        assert!(open.is_empty() && after["complete"] == true, "{name}: tasks not ticked after the solution: {open:?}");
        t.stop().await;
    }
}

/// The tutorial's start is what Microsoft's tutorial assumes: Connect installed with hash
/// sync, writeback off on both halves — SSPR_0010 for a synced user, no onboarding events —
/// and the wizard's Configure (the `onboard` action) is what turns the sync side on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_starts_with_writeback_off_and_onboarding_turns_the_sync_side_on() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../exercises/enable-writeback.yaml");
    let x = scenario::exercise::load(&path).unwrap();
    let t = TestLab::start_with(|c| scenario::exercise::configure(c, &x)).await;
    scenario::exercise::begin(&t.lab, x).await.unwrap();
    let engine = t.lab.engine.as_ref().expect("Connect is installed");
    assert!(engine.events().iter().all(|e| e.id != 31004 && e.id != 31005), "no onboarding before the trainee does it");
    let sync = format!("/v1.0/directory/onPremisesSynchronization/{}", t.info().tenant.tenant_id);
    let admin = t.admin_token().await;
    let (_, v) = t.call("GET", &sync, Some(&admin), None).await;
    assert_eq!(
        (v["features"]["passwordWritebackEnabled"].clone(), v["features"]["passwordSyncEnabled"].clone()),
        (false.into(), true.into())
    );
    let (status, body) =
        t.call("POST", "/lab/sspr/flows", None, Some(serde_json::json!({ "userPrincipalName": "user1@testlab.example" }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("SSPR_0010")), "{body}");
    // a wrong password on the wizard's sign-in: 32009, nothing turned on
    let (status, body) = t
        .lab_call(
            "POST",
            "/lab/engine/control",
            Some(serde_json::json!({ "action": "onboard", "userPrincipalName": "labadmin@testlab.onmicrosoft.com", "password": "wrong" })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(engine.events().iter().any(|e| e.id == 32009));
    let (_, v) = t.call("GET", &sync, Some(&admin), None).await;
    assert_eq!(v["features"]["passwordWritebackEnabled"], false);
    let t2 = &t.info().tenant;
    let onboard = serde_json::json!({ "action": "onboard", "userPrincipalName": t2.admin_upn, "password": t2.admin_password });
    let (status, body) = t.lab_call("POST", "/lab/engine/control", Some(onboard)).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<u32> = engine.events().iter().map(|e| e.id).filter(|id| [31004, 31017, 31018, 31005].contains(id)).collect();
    assert_eq!(&ids[ids.len() - 4..], [31004, 31017, 31018, 31005], "Connect's onboarding events in order");
    let (_, v) = t.call("GET", &sync, Some(&admin), None).await;
    assert_eq!(v["features"]["passwordWritebackEnabled"], true);
    t.stop().await;
}
