//! A headless Chromium driven over WebDriver (chromedriver, started by
//! `scripts/services/chromium.sh`), and the steps every browser test shares.

use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

/// A browser session with its own profile; closed on drop of [`Browser::close`].
pub struct Browser {
    pub client: Client,
    pub base: String,
    _profile: tempfile::TempDir,
}

/// The WebDriver URL, or `None` to skip (only when services are not required).
fn webdriver_url() -> Option<String> {
    match std::env::var("LATCHKEY_TEST_WEBDRIVER_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("LATCHKEY_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "LATCHKEY_TEST_WEBDRIVER_URL is not set but LATCHKEY_REQUIRE_SERVICES=1 (start scripts/services/chromium.sh)"
            );
            eprintln!("skipping: LATCHKEY_TEST_WEBDRIVER_URL is not set");
            None
        }
    }
}

impl Browser {
    /// A fresh headless Chromium on the app at `base`, or `None` when browsers are skipped.
    pub async fn open(base: &str) -> Option<Browser> {
        let url = webdriver_url()?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let profile = tempfile::tempdir().unwrap();
        let args = serde_json::json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }));
        let client = ClientBuilder::rustls().unwrap().capabilities(caps).connect(&url).await.unwrap();
        Some(Browser { client, base: base.to_owned(), _profile: profile })
    }

    /// Go to a path of the app.
    pub async fn go(&self, path: &str) {
        self.client.goto(&format!("{}{}", self.base, path)).await.unwrap();
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{}", url.path(), q),
            None => url.path().to_owned(),
        }
    }

    /// The element matching a CSS selector (waiting up to 5 s for it).
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// The text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Type into a field (clearing it first).
    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.find(css).await;
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }

    /// Click the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Click something that loads another page, and wait until the new page has replaced the
    /// old one (up to 10 s).
    pub async fn click_and_wait(&self, css: &str) {
        let old = self.find("html").await;
        self.click(css).await;
        for _ in 0..200 {
            if old.tag_name().await.is_err() {
                self.find("body").await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} did not load another page");
    }

    /// The whole page's visible text.
    pub async fn body(&self) -> String {
        self.text("body").await
    }

    /// The page's HTML source.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Sign in through the form.
    pub async fn sign_in(&self, tenant: &str, user: &str, password: &str) {
        self.go("/sign-in").await;
        self.fill("#tenant", tenant).await;
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.click("#sign-in").await;
        self.find("#signed-in-as").await;
    }

    /// Save a screenshot as `target/screenshots/NAME.png` (for the README and for people
    /// looking at a failure).
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// End the browser session.
    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}

/// `target/screenshots` of the workspace (or of `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}
