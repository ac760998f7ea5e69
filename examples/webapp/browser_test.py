"""The example web app (app.py) driven in headless Chromium, as two devices of one user.

Debian's chromium and chromium-driver, driven by Selenium. scripts/test-webapp starts Redis,
sessiond and the app and runs this; it can also run against an app you started yourself:

    WEBAPP_URL=http://127.0.0.1:5000 python browser_test.py

Environment:
    WEBAPP_URL            the app (required)
    WEBAPP_TEST_OUTPUT    where the screenshots go (default: .build-webapp-test/screenshots
                          at the repository root)
    WEBAPP_DEMO_PASSWORD  the app's demo password (default: demo)
    SESSIOND_URL, ADMIN_KEY  when both are set, each step is also checked on sessiond's side
                          (the user's live sessions, by the admin API)
    CHROMIUM_BINARY, CHROMEDRIVER_BINARY  default /usr/bin/chromium, /usr/bin/chromedriver

If the browser cannot be started, the test says so and fails: it never skips. The last line is
"browser_test: N passed, M failed". Tokens and API keys are never printed.
"""

from __future__ import annotations

import glob
import html.parser
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
import urllib.parse

import requests

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WEBAPP_URL = os.environ.get("WEBAPP_URL", "").rstrip("/")
OUTPUT = os.environ.get("WEBAPP_TEST_OUTPUT") or os.path.join(
    REPO_ROOT, ".build-webapp-test", "screenshots")
PASSWORD = os.environ.get("WEBAPP_DEMO_PASSWORD") or "demo"
SESSIOND_URL = os.environ.get("SESSIOND_URL", "").rstrip("/")
ADMIN_KEY = os.environ.get("ADMIN_KEY", "")
CHROMIUM = os.environ.get("CHROMIUM_BINARY") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BINARY") or "/usr/bin/chromedriver"
TIMEOUT = 15


class Failed(Exception):
    pass


passed = 0
screenshots: list[str] = []


def check(condition: bool, what: str) -> None:
    global passed
    if not condition:
        raise Failed(what)
    passed += 1
    print(f"  ok {passed:2d}  {what}", flush=True)


def step(title: str) -> None:
    print(f"- {title}", flush=True)


# --------------------------------------------------------------------------------------------
# One browser = one device: its own Chromium process and profile (cookie jar).


class Browser:
    def __init__(self, name: str, profile_dir: str):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.name = name
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",  # as root, Chromium's sandbox refuses to start
            "--disable-dev-shm-usage",
            "--disable-gpu",
            f"--user-data-dir={profile_dir}",
            "--window-size=1200,820",
            # Each device shows up under its own name on the devices page.
            f"--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"HeadlessChrome sessiond-webapp-test {name}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--password-store=basic",
            "--disable-features=PasswordLeakDetection,Translate,OptimizationHints",
        ):
            options.add_argument(arg)
        options.add_experimental_option("prefs", {
            "credentials_enable_service": False,
            "profile.password_manager_enabled": False,
        })
        # chromedriver's log would hold cookie values: it goes nowhere.
        service = Service(executable_path=CHROMEDRIVER, log_output=subprocess.DEVNULL)
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(TIMEOUT)

    # Navigation and waiting.

    def open(self, path: str) -> str:
        self.driver.get(WEBAPP_URL + path)
        return self.page()

    def page(self) -> str:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, TIMEOUT).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        bodies = self.driver.find_elements(By.CSS_SELECTOR, "body[data-page]")
        return bodies[0].get_attribute("data-page") if bodies else ""

    def click(self, css: str, root=None) -> str:
        """Clicks the element (a link or a submit button) and waits for the next page."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        # A mark on the current document's window: the next page has none. (Waiting for an
        # element to go stale races with the navigation in chromedriver.)
        self.driver.execute_script("window.__browserTestMark = true")
        (root or self.driver).find_element(By.CSS_SELECTOR, css).click()
        WebDriverWait(self.driver, TIMEOUT, poll_frequency=0.05,
                      ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script(
                "return window.__browserTestMark === undefined"
                " && document.readyState === 'complete'"))
        return self.page()

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""

    def message_code(self) -> str:
        from selenium.webdriver.common.by import By

        found = self.driver.find_elements(By.CSS_SELECTOR, "#message")
        return found[0].get_attribute("data-code") if found else ""

    def path(self) -> str:
        parts = urllib.parse.urlsplit(self.driver.current_url)
        return parts.path + ("?" + parts.query if parts.query else "")

    def shot(self, name: str) -> None:
        path = os.path.join(OUTPUT, name + ".png")
        self.driver.save_screenshot(path)
        screenshots.append(path)

    # The app's actions.

    def login(self, user: str) -> str:
        if self.open("/login") != "login":
            raise Failed(f"{self.name}: /login did not show the login page")
        self.driver.find_element("id", "username").send_keys(user)
        self.driver.find_element("id", "password").send_keys(PASSWORD)
        return self.click("#login")

    def session_cookies(self) -> list[dict]:
        return [c for c in self.driver.get_cookies() if c["name"].startswith("__Host-")]

    def devices(self) -> list[dict]:
        """The rows of the devices page: handle, current, user agent."""
        from selenium.webdriver.common.by import By

        rows = []
        for tr in self.driver.find_elements(By.CSS_SELECTOR, "#devices tr.device"):
            rows.append({
                "handle": tr.get_attribute("data-handle"),
                "current": "current" in (tr.get_attribute("class") or "").split(),
                "ua": tr.find_element(By.CSS_SELECTOR, "td.ua").text,
                "element": tr,
            })
        return rows

    def post_from_page(self, path: str, fields: dict) -> dict:
        """A same-origin POST made by a script on the current page (carries the cookie)."""
        return self.driver.execute_async_script(
            """
            const [path, fields, done] = arguments;
            fetch(path, {method: "POST", body: new URLSearchParams(fields)})
              .then(r => done({status: r.status, url: r.url}))
              .catch(e => done({status: -1, url: String(e)}));
            """, path, fields)

    def quit(self) -> None:
        try:
            self.driver.quit()
        except Exception:  # noqa: BLE001 - best effort at the end
            pass


def live_sessions(user: str) -> int | None:
    """The user's live sessions by sessiond's admin API (None without SESSIOND_URL/ADMIN_KEY)."""
    if not (SESSIOND_URL and ADMIN_KEY):
        return None
    r = requests.get(f"{SESSIOND_URL}/v1/users/{urllib.parse.quote(user, safe='')}/sessions",
                     headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=5)
    r.raise_for_status()
    return r.json()["total"]


def check_live(user: str, expected: int) -> None:
    n = live_sessions(user)
    if n is not None:
        check(n == expected, f"sessiond lists {expected} live session(s) of {user}")


class CSRFField(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.value = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name") == "csrf" and self.value is None:
            self.value = a.get("value")


# --------------------------------------------------------------------------------------------
# The steps.


def check_cookie_flags(browser: Browser) -> None:
    host = urllib.parse.urlsplit(WEBAPP_URL).hostname
    cookies = browser.session_cookies()
    check(len(cookies) == 1, f"{browser.name} holds exactly one __Host- session cookie")
    c = cookies[0]
    check(c["name"].startswith("__Host-"), f"cookie name {c['name']} starts with __Host-")
    check(c.get("httpOnly") is True, "cookie is HttpOnly")
    check(c.get("secure") is True, "cookie is Secure")
    check(c.get("sameSite") in ("Lax", "Strict"), f"cookie is SameSite={c.get('sameSite')}")
    check(c.get("path") == "/", "cookie has Path=/")
    # A host-only cookie (no Domain attribute) is reported with the bare host, no leading dot.
    check(c.get("domain") == host, f"cookie is host-only (domain {c.get('domain')}, no Domain=)")
    check(len(c.get("value", "")) == 43, "cookie value is a 43-character token")
    in_js = browser.driver.execute_script("return document.cookie")
    check(c["name"] not in in_js, "page scripts cannot read the cookie (document.cookie)")
    check(c["value"] not in browser.driver.page_source, "the token never appears in the page")


def check_raw_http() -> None:
    """The app's Set-Cookie headers and its Origin check, seen without a browser."""
    http = requests.Session()
    origin = WEBAPP_URL
    r = http.post(WEBAPP_URL + "/login", data={"username": "probe", "password": PASSWORD},
                  headers={"Origin": "http://evil.example"}, allow_redirects=False, timeout=5)
    check(r.status_code == 403, "login posted from another origin is refused (403)")
    r = http.post(WEBAPP_URL + "/login", data={"username": "probe", "password": "wrong"},
                  headers={"Origin": origin}, allow_redirects=False, timeout=5)
    check(r.status_code == 303 and "msg=bad_login" in r.headers.get("Location", ""),
          "a wrong password is refused")
    check("Set-Cookie" not in r.headers, "a refused login sets no cookie")
    r = http.post(WEBAPP_URL + "/login", data={"username": "probe", "password": PASSWORD},
                  headers={"Origin": origin}, allow_redirects=False, timeout=5)
    set_cookie = r.headers.get("Set-Cookie", "")
    name, _, rest = set_cookie.partition("=")
    token, *attrs = [p.strip() for p in rest.split(";")]
    attr_names = {a.split("=")[0].lower() for a in attrs}
    check(r.status_code == 303 and name.startswith("__Host-") and len(token) == 43,
          "login answers 303 with a __Host- cookie")
    check({"path=/", "secure", "httponly"} <= {a.lower() for a in attrs},
          "Set-Cookie has Path=/, Secure and HttpOnly")
    check("samesite" in attr_names and "domain" not in attr_names,
          "Set-Cookie has SameSite and no Domain")
    cookie = {"Cookie": f"{name}={token}"}
    page = http.get(WEBAPP_URL + "/", headers=cookie, allow_redirects=False, timeout=5)
    parser = CSRFField()
    parser.feed(page.text)
    check(page.status_code == 200 and bool(parser.value), "the home page carries a CSRF token")
    r = http.post(WEBAPP_URL + "/logout", data={"csrf": parser.value},
                  headers={**cookie, "Origin": "http://evil.example"}, allow_redirects=False,
                  timeout=5)
    check(r.status_code == 403, "a POST with the cookie and the CSRF token but a foreign Origin is refused")
    r = http.post(WEBAPP_URL + "/logout", data={"csrf": "not-the-token"},
                  headers={**cookie, "Origin": origin}, allow_redirects=False, timeout=5)
    check(r.status_code == 403, "a POST with a wrong CSRF token is refused")
    r = http.post(WEBAPP_URL + "/logout", data={"csrf": parser.value},
                  headers={**cookie, "Origin": origin}, allow_redirects=False, timeout=5)
    cleared = r.headers.get("Set-Cookie", "")
    check(r.status_code == 303 and cleared.startswith(f"{name}=;") and "Max-Age=0" in cleared,
          "logout answers 303 and clears the cookie (Max-Age=0)")
    page = http.get(WEBAPP_URL + "/", headers=cookie, allow_redirects=False, timeout=5)
    check(page.status_code == 303 and page.headers.get("Location", "").startswith("/login"),
          "the logged-out token is sent to the login page")
    bad_cookie = f"{name}=not-a-token\u20ac".encode()  # UTF-8 bytes, as a client may send
    page = http.get(WEBAPP_URL + "/devices", headers={"Cookie": bad_cookie},
                    allow_redirects=False, timeout=5)
    check(page.status_code == 303 and page.headers.get("Set-Cookie", "").startswith(f"{name}=;"),
          "a malformed cookie is sent to the login page and cleared")


def run(a: Browser, b: Browser) -> None:
    step("the cookie and the CSRF defence over plain HTTP")
    check_raw_http()

    step("device A logs in as alice")
    check(a.open("/devices") == "login", "A without a session is sent from /devices to the login page")
    check(a.message_code() == "login_required", "the login page says: please log in")
    a.shot("01-login-page")
    check(a.login("alice") == "home", "A logs in as alice and lands on the home page")
    check(a.text("#user") == "alice", "the home page greets alice")
    a.shot("02-home-device-a")
    check_cookie_flags(a)

    step("device B logs in as alice too")
    check(b.login("alice") == "home", "B logs in as alice")
    b.shot("03-home-device-b")
    check_live("alice", 2)

    step("A sees two devices and logs B out")
    check(a.click("#nav-devices") == "devices", "A opens the devices page")
    rows = a.devices()
    check(len(rows) == 2, "the devices page lists two devices")
    check(a.text("#total") == "2", "the devices page counts two")
    current = [r for r in rows if r["current"]]
    others = [r for r in rows if not r["current"]]
    check(len(current) == 1 and "device-A" in current[0]["ua"], "A's own session is marked as this device")
    check(len(others) == 1 and "device-B" in others[0]["ua"], "the other device is B (by its user agent)")
    check("127.0.0.1" in rows[0]["element"].text, "the devices page shows the IP")
    a.shot("04-devices-two")
    check(a.click("button.logout-device", root=others[0]["element"]) == "devices",
          "A clicks 'Log out this device' on B's row")
    check(a.message_code() == "device_logged_out", "the page says the device is logged out")
    rows = a.devices()
    check(len(rows) == 1 and rows[0]["current"], "only A's own session is left")
    a.shot("05-devices-after-logging-b-out")
    check_live("alice", 1)

    step("B's next click goes to the login page")
    check(b.click("#nav-devices") == "login", "B's next click lands on the login page")
    check(b.message_code() == "login_required", "B is asked to log in again")
    check(b.session_cookies() == [], "the app cleared B's dead cookie")
    b.shot("06-device-b-sent-to-login")

    step("log out all other devices")
    check(b.login("alice") == "home", "B logs in as alice again")
    check(a.click("#nav-devices") == "devices" and len(a.devices()) == 2, "A sees two devices again")
    check(a.click("#logout-others") == "devices", "A clicks 'Log out all other devices'")
    check(a.message_code() == "others_logged_out" and "1 other" in a.text("#message"),
          "the page says one other device was logged out")
    rows = a.devices()
    check(len(rows) == 1 and rows[0]["current"], "A is still logged in, alone")
    a.shot("07-devices-after-logout-others")
    check_live("alice", 1)
    check(b.click("#nav-home") == "login", "B's next click lands on the login page")
    b.shot("08-device-b-sent-to-login-again")

    step("CSRF: forged POSTs change nothing")
    check(a.open("/devices") == "devices", "A is on the devices page")
    result = a.post_from_page("/devices/logout-others", {"csrf": "forged"})
    check(result["status"] == 403, "a same-origin POST with a forged CSRF token answers 403")
    a.driver.get(
        "data:text/html,<h1>Another site</h1><form method=post action='" + WEBAPP_URL +
        "/logout'><button>x</button></form><script>document.forms[0].submit()</script>")
    page = a.page()
    check(page in ("login", "error"), f"a cross-site POST to /logout gets nowhere (page: {page})")
    a.shot("09-cross-site-post-refused")
    check(a.open("/") == "home", "A is still logged in after the cross-site POST")
    check_live("alice", 1)

    step("the admin page: log alice out everywhere")
    check(b.login("admin") == "home", "B logs in as admin")
    admin_handle = b.text("#handle")
    check(b.click("#nav-admin") == "admin", "the admin sees the admin page")
    b.driver.find_element("id", "admin-user").send_keys("alice")
    check(b.click("#lookup") == "admin" and b.text("#admin-total") == "1",
          "the admin looks alice up: one session")
    b.shot("10-admin-lookup")
    check(b.click("#logout-everywhere") == "admin", "the admin clicks 'Log out alice everywhere'")
    check(b.message_code() == "user_logged_out" and "1 session" in b.text("#message"),
          "the page says one session ended")
    check(b.text("#admin-total") == "0", "alice has no session left")
    b.shot("11-admin-logged-out-everywhere")
    check_live("alice", 0)
    check(a.click("#nav-devices") == "login", "A's next click lands on the login page")
    a.shot("12-device-a-sent-to-login-by-admin")

    step("a user is no admin and cannot log out other users' devices")
    check(a.login("alice") == "home", "A logs in as alice again")
    check(a.open("/admin") == "error" and "Admins only" in a.text("#error-text"),
          "alice gets 403 on the admin page")
    a.shot("13-admin-forbidden")
    check(a.open("/devices") == "devices", "A opens the devices page")
    csrf = a.driver.find_element("css selector", "input[name=csrf]").get_attribute("value")
    result = a.post_from_page("/devices/logout", {"csrf": csrf, "handle": admin_handle})
    check(result["status"] == 200 and "msg=device_not_found" in result["url"],
          "alice's 'log out this device' with the admin's handle is refused (not her device)")
    check(b.open("/") == "home", "the admin is still logged in")
    check_live("admin", 1)

    step("logout")
    check(b.click("#logout") == "login" and b.message_code() == "logged_out",
          "the admin logs out and lands on the login page")
    check(b.session_cookies() == [], "logout removed the cookie")
    b.shot("14-logged-out")
    check(b.open("/admin") == "login", "after logout the admin page sends to the login page")
    check_live("admin", 0)
    check(a.click("#logout") == "login", "alice logs out too")
    check_live("alice", 0)


interrupted = False


def on_sigterm(*_) -> None:
    global interrupted
    interrupted = True
    sys.exit(143)  # unwinds through main's finally, which closes the browsers


def explain_chromium_failure() -> None:
    """Runs Chromium alone once, so that its own complaint shows up in the test's output."""
    profile = tempfile.mkdtemp(prefix="webapp-browser-test-probe.")
    try:
        probe = subprocess.run(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
             "--disable-gpu", f"--user-data-dir={profile}", "--dump-dom", "about:blank"],
            capture_output=True, text=True, timeout=30)
        lines = (probe.stderr or "").strip().splitlines()[-10:]
        print(f"browser_test: {CHROMIUM} alone exits with status {probe.returncode}"
              + (":" if lines else " and prints nothing"), file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
    except (OSError, subprocess.SubprocessError) as e:
        print(f"browser_test: {CHROMIUM} alone cannot run: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main() -> int:
    if not WEBAPP_URL:
        print("browser_test: FAIL: WEBAPP_URL is not set", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, on_sigterm)
    os.makedirs(OUTPUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUTPUT, "[0-9][0-9]-*.png")) + \
            glob.glob(os.path.join(OUTPUT, "failure-*.png")):
        os.remove(old)

    for binary in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            print(f"browser_test: FAIL: {binary} is missing: install Debian's chromium and "
                  "chromium-driver (scripts/test-webapp does). The browser test cannot run.",
                  file=sys.stderr)
            print("browser_test: 0 passed, 1 failed")
            return 1

    profiles = tempfile.mkdtemp(prefix="webapp-browser-test.")
    browsers: list[Browser] = []
    failed = 0
    try:
        try:
            for name in ("device-A", "device-B"):
                browsers.append(Browser(name, os.path.join(profiles, name)))
        except Exception as e:  # noqa: BLE001
            print(f"browser_test: FAIL: headless Chromium ({CHROMIUM}) could not be started: "
                  f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
                  file=sys.stderr)
            explain_chromium_failure()
            failed = 1
            return 1
        print(f"browser_test: {browsers[0].driver.capabilities.get('browserName')} "
              f"{browsers[0].driver.capabilities.get('browserVersion')}, app at {WEBAPP_URL}")
        try:
            run(*browsers)
        except Exception as e:  # noqa: BLE001
            failed = 1
            reason = str(e) if isinstance(e, Failed) else traceback.format_exc()
            print(f"browser_test: FAIL: {reason}", file=sys.stderr)
            for browser in browsers:
                try:
                    print(f"  {browser.name} was at {browser.path()}", file=sys.stderr)
                    browser.shot(f"failure-{browser.name}")
                except Exception:  # noqa: BLE001
                    pass
        print("browser_test: screenshots:")
        for path in screenshots:
            print(f"  {path}")
        return 1 if failed else 0
    finally:
        for browser in browsers:
            browser.quit()
        shutil.rmtree(profiles, ignore_errors=True)
        if interrupted:
            print("browser_test: FAIL: interrupted by SIGTERM", file=sys.stderr)
            failed = 1
        print(f"browser_test: {passed} passed, {failed} failed")


if __name__ == "__main__":
    sys.exit(main())
