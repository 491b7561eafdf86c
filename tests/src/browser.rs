//! The lab's pages in a real browser: headless Chromium driven over WebDriver (fantoccini and
//! Debian's chromedriver). Screenshots of every page go to target/browser-screenshots/<test>/.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::TestLab;

/// A browser session: chromedriver on a free port, one headless Chromium, screenshots.
pub struct Browser {
    pub c: Client,
    driver: Child,
    shots: std::path::PathBuf,
    n: usize,
    pub base: String,
    /// Signed in as the lab's administrator (the dashboard, the outbox, the admin center).
    pub admin: bool,
}

impl Browser {
    pub async fn open(test: &str, t: &TestLab) -> Browser {
        Browser::open_at(test, &t.info().tenant.https, &[]).await
    }

    /// A session on the lab at `base` (its https URL), Chromium given `args` besides its own
    /// (`--host-resolver-rules=…` for names only this test resolves).
    pub async fn open_at(test: &str, base: &str, args: &[&str]) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: chromium-driver; scripts/deps.sh installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let mut chrome_args = vec!["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"];
        chrome_args.extend(args);
        let caps: fantoccini::wd::Capabilities = serde_json::from_value(json!({
            // the lab's certificate is from its own CA, which this browser profile does not hold
            "acceptInsecureCerts": true,
            // a page that never loads fails the test with a message before nextest stops it
            "timeouts": { "pageLoad": 90000, "script": 30000 },
            "goog:chromeOptions": { "args": chrome_args }
        }))
        .expect("capabilities");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        // chromedriver needs a moment to listen: try until it answers (bounded)
        let until = Instant::now() + Duration::from_secs(20);
        let c = loop {
            match ClientBuilder::new(connector.clone()).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > until => panic!("WebDriver session: {e}"),
                Err(_) => tokio::task::yield_now().await,
            }
        };
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let shots = target.join("browser-screenshots").join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot directory");
        Browser { c, driver, shots, n: 0, base: base.to_string(), admin: false }
    }

    /// Opens a page; the lab administrator's pages first ask for the sign-in (once), as they
    /// do a trainer, and then come back to the page asked for.
    pub async fn goto(&mut self, path: &str) {
        let admins_only = ["/portal/lab", "/portal/outbox", "/portal/admin", "/portal/connect", "/portal/syncmanager", "/portal/dcs"]
            .iter()
            .any(|p| path.starts_with(p));
        if admins_only && !self.admin && !path.starts_with("/portal/admin/signin") {
            self.c.goto(&format!("{}{path}", self.base)).await.expect("navigate");
            self.wait("signin").await;
            self.fill("user", "labadmin@testlab.onmicrosoft.com").await;
            self.fill("password", "Cloud-Admin-Pa55!").await;
            self.click("signin").await;
            self.admin = true;
            // the sign-in page's own address ends with `?next={path}` too: wait until it is gone
            let until = Instant::now() + Duration::from_secs(15);
            let mut now = self.c.current_url().await.expect("url");
            while now.path().ends_with("/signin") {
                assert!(Instant::now() < until, "still on the sign-in page 15 s after signing in: {now}");
                tokio::task::yield_now().await;
                now = self.c.current_url().await.expect("url");
            }
            assert!(now.as_str().ends_with(path), "after signing in, back at {path}: {now}");
            self.wait("main").await;
            return;
        }
        self.c.goto(&format!("{}{path}", self.base)).await.expect("navigate");
    }

    /// Signs in on the lab's sign-in page — the tenant's own pages, username then password
    /// (the authorization code flow, as an app signs its users in) — as `upn`. Where it
    /// ends (signed in, an error, "Update your password") is the caller's to read.
    pub async fn sign_in_as(&mut self, upn: &str, password: &str) {
        self.goto("/portal/signin").await;
        self.fill("i0116", upn).await;
        self.submit("idSIButton9").await;
        self.fill("i0118", password).await;
        self.submit("idSIButton9").await;
    }

    /// Waits for an element (the page after a click), at most 15 s.
    pub async fn wait(&self, id: &str) -> fantoccini::elements::Element {
        self.c.wait().at_most(Duration::from_secs(15)).for_element(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}"))
    }

    pub async fn fill(&self, id: &str, text: &str) {
        let e = self.wait(id).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, id: &str) {
        self.wait(id).await.click().await.unwrap_or_else(|e| panic!("click #{id}: {e}"));
    }

    /// Ticks (`on`) or clears a checkbox, clicking it only when it is not so already.
    pub async fn check(&self, id: &str, on: bool) {
        let e = self.wait(id).await;
        if e.is_selected().await.unwrap_or_else(|err| panic!("#{id}: {err}")) != on {
            e.click().await.unwrap_or_else(|err| panic!("click #{id}: {err}"));
        }
    }

    /// Clicks a button that sends a form back to the same address, and waits until the page
    /// it was on is gone (an element of the next page might else be read from the old one).
    pub async fn submit(&self, id: &str) {
        let button = self.wait(id).await;
        self.follow(button).await;
    }

    /// Clicks a button or link that loads a page, and waits until the page it was on is gone.
    pub async fn follow(&self, e: fantoccini::elements::Element) {
        e.click().await.unwrap_or_else(|err| panic!("click: {err}"));
        let until = Instant::now() + Duration::from_secs(30);
        while e.is_enabled().await.is_ok() {
            assert!(Instant::now() < until, "the page still shown 30 s after the click");
            tokio::task::yield_now().await;
        }
    }

    pub async fn text(&self, id: &str) -> String {
        self.wait(id).await.text().await.expect("text")
    }

    /// Waits until an element's text is no longer `before` (the next page has loaded), at most
    /// 30 s (eight browsers share two cores).
    pub async fn wait_text_changes(&self, id: &str, before: &str) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            // the old page may go away between finding and reading: look again
            if let Ok(e) = self.c.find(Locator::Id(id)).await
                && let Ok(now) = e.text().await
                && now != before
            {
                return now;
            }
            assert!(Instant::now() < until, "#{id} still says {before:?}");
            tokio::task::yield_now().await;
        }
    }

    /// Saves the page as `NN-name.png`.
    pub async fn shot(&mut self, name: &str) {
        self.n += 1;
        let png = self.c.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.n)), png).expect("write screenshot");
    }

    /// The latest code the lab outbox holds, read from its page as a learner would.
    pub async fn code_from_outbox(&mut self) -> String {
        let back = self.c.current_url().await.expect("url");
        self.goto("/portal/outbox").await;
        self.shot("outbox").await;
        let first = self.c.find(Locator::Css("td.message")).await.expect("a message in the outbox").text().await.expect("text");
        let code: String = first.split_whitespace().find(|w| w.len() == 8 && w.chars().all(|c| c.is_ascii_digit())).expect("a code").into();
        self.c.goto(back.as_str()).await.expect("back");
        code
    }

    /// "Can't access your account?" through the verification gates, up to the new password.
    pub async fn sspr_until_password(&mut self, upn: &str) {
        self.goto("/portal/sspr").await;
        self.shot("sspr-who-are-you").await;
        self.fill("user", upn).await;
        self.click("next").await;
        self.wait("send").await;
        self.shot("sspr-verification-method").await;
        self.click("send").await;
        self.wait("code").await;
        let code = self.code_from_outbox().await;
        self.fill("code", &code).await;
        self.shot("sspr-code").await;
        self.click("verify").await;
        self.wait("new_password").await;
        self.shot("sspr-new-password").await;
    }

    /// The new-password page: type it twice (or two different ones) and finish.
    pub async fn choose_password(&self, new: &str, confirm: &str) {
        self.fill("new_password", new).await;
        self.fill("confirm_password", confirm).await;
        self.click("finish").await;
    }

    pub async fn close(mut self) {
        let _ = self.c.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
