# SPDX-License-Identifier: MIT
"""A small browser for the black-box tests: Debian's chromium, headless,
driven through Debian's chromedriver over the W3C WebDriver HTTP protocol.

Why this and not Selenium, Playwright or Puppeteer: those come from PyPI or
npm and most fetch a browser build of their own at install time, which a
machine that reaches only the package registries cannot do. This file uses
python3's standard library alone (http.client, json, subprocess), and the
browser and driver are the `chromium` and `chromium-driver` packages that
`tools/install-deps check` installs, of the same version by construction.

    with Browser() as b:                      # or Browser(size=(390, 844))
        b.get(f"http://127.0.0.1:{port}/")
        b.find("input[name=q]").send_keys("hello")
        b.find("button[type=submit]").click()
        b.wait_until(lambda: b.current_url.endswith("/done"))
        assert "hello" in b.find("#result").text
        b.screenshot("/tmp/page.png")

What it takes care of:
- Root (CI runs as root): chromium refuses to start as root with its
  sandbox on, hence --no-sandbox.
- /dev/shm: a container's is often 64 MiB, too small for chromium, which
  then crashes its renderer; --disable-dev-shm-usage puts that memory in
  /tmp instead.
- The network: only loopback is reached. Every other host goes to a dead
  proxy on 127.0.0.1:9: refused at once, no DNS lookup, no wait on a
  closed network. Chromium's own traffic is turned off as far as flags go;
  what is left (about 7 requests in a session's first seconds: a
  preconnect to the default search engine, an on-device-model component
  check, accounts.google.com, with backoff) dies on that proxy at once.
- Never hanging: every HTTP call to chromedriver has a timeout, the page
  load and script timeouts are set, every wait is bounded, and on exit the
  session is deleted, chromedriver terminated (killed after a bounded wait,
  with anything left in its process group) and the temp dirs removed.
"""

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref

CHROMIUM = os.environ.get("JADA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("JADA_CHROMEDRIVER", "/usr/bin/chromedriver")
# The same ceiling as tests/lib/harness.py: a page load, a script, a wait.
TIMEOUT = float(os.environ.get("JADA_TEST_TIMEOUT", "20"))
# Chromium's start (a new session) is the slowest call; bounded all the same.
START_TIMEOUT = 60.0

ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"

# Hosts chromium may reach directly; every other one goes to a dead proxy.
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
DEAD_PROXY = "http://127.0.0.1:9"

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # needed as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a container's small /dev/shm crashes tabs
    # Less of chromium's own traffic and state: each of these would
    # otherwise try a Google host at start or in the background.
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--no-default-browser-check",
    "--no-pings",
    "--password-store=basic",
    # One list: a second --disable-features would replace this one.
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,"
    "OptimizationGuideOnDeviceModel,Translate,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,"
    "InterestFeedContentSuggestions,PrivacySandboxSettings4",
]


class WebDriverError(Exception):
    """An error from chromedriver (the W3C error code and its message), or
    from talking to it (error "client timeout", "chromedriver gone")."""

    def __init__(self, error, message, command=""):
        self.error = error
        self.message = message
        self.command = command
        where = f" ({command})" if command else ""
        super().__init__(f"{error}: {message}{where}")


class NoSuchElement(WebDriverError):
    """No element matches a CSS selector."""


class WaitTimeout(WebDriverError):
    """A wait_for / wait_until that ran out of time."""


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reap(proc, dirs):
    """Ends chromedriver and whatever is left in its process group, and
    removes the temp dirs. Safe to call twice; also runs at interpreter exit
    for a Browser that was never closed."""
    if proc is not None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        # Chromium's processes are in chromedriver's group (its own session).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


class Browser:
    """A headless chromium session; use it as a context manager. size is
    the window's (width, height) in CSS pixels; proxy_bypass the hosts that
    are reached directly (the rest go to a dead proxy)."""

    def __init__(self, size=(1280, 900), proxy_bypass=LOOPBACK, extra_args=()):
        self.size = tuple(size)
        self.proxy_bypass = tuple(proxy_bypass)
        self.extra_args = list(extra_args)
        self.port = None
        self.session_id = None
        self.start_seconds = None  # how long chromedriver + chromium took
        self._proc = None
        self._tmp = None
        self._finalizer = None

    # -- life cycle ---------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        t0 = time.monotonic()
        self._tmp = tempfile.mkdtemp(prefix="jada-webdriver-")
        self._finalizer = weakref.finalize(self, _reap, None, [self._tmp])
        try:
            self._start_driver()
            self._new_session()
        except BaseException:
            self.close()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _start_driver(self):
        for path, pkg in ((CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")):
            if not os.access(path, os.X_OK):
                raise WebDriverError("not installed", f"no {path}: the tests need Debian's {pkg} "
                                     "(tools/install-deps check installs it)")
        env = dict(os.environ)
        # chromium writes under $HOME (~/.pki, crash reports): keep it here.
        env["HOME"] = self._tmp
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        for _ in range(3):  # the free port may be taken before chromedriver binds it
            self.port = _free_port()
            log = open(os.path.join(self._tmp, "chromedriver.log"), "ab")
            try:
                self._proc = subprocess.Popen(
                    [CHROMEDRIVER, f"--port={self.port}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, cwd=self._tmp, start_new_session=True)
            finally:
                log.close()
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _reap, self._proc, [self._tmp])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    v = self._http("GET", "/status", timeout=2)
                    if isinstance(v, dict) and v.get("ready"):
                        return
                except (WebDriverError, OSError):
                    pass
                time.sleep(0.05)
            _reap(self._proc, [])
        raise WebDriverError("chromedriver gone",
                             f"{CHROMEDRIVER} did not get ready on 127.0.0.1: {self.log()[-2000:]}")

    def _new_session(self):
        w, h = self.size
        args = CHROMIUM_ARGS + [
            f"--user-data-dir={os.path.join(self._tmp, 'profile')}",
            f"--window-size={w},{h}",
            f"--proxy-server={DEAD_PROXY}",
            "--proxy-bypass-list=" + ";".join(self.proxy_bypass),
        ] + self.extra_args
        ms = int(TIMEOUT * 1000)
        caps = {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"implicit": 0, "pageLoad": ms, "script": ms},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }
        v = self._http("POST", "/session", {"capabilities": {"alwaysMatch": caps}},
                       timeout=START_TIMEOUT)
        self.session_id = v["sessionId"]
        # --window-size sets the outer window; make the viewport exact.
        self._fit_viewport(w, h)

    def close(self):
        """Deletes the session (chromium quits), ends chromedriver, removes
        the temp dirs. Idempotent."""
        if self.session_id is not None and self._proc is not None and self._proc.poll() is None:
            try:
                self._http("DELETE", f"/session/{self.session_id}", timeout=10)
            except (WebDriverError, OSError):
                pass
        self.session_id = None
        if self._finalizer is not None:
            self._finalizer()

    def log(self):
        """chromedriver's output (and chromium's stderr), for a failure's message."""
        try:
            with open(os.path.join(self._tmp, "chromedriver.log"), errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    # -- the wire -----------------------------------------------------------

    def _http(self, method, path, body=None, timeout=None):
        timeout = TIMEOUT + 10 if timeout is None else timeout
        command = f"{method} {path}"
        if body is None and method == "POST":
            body = {}  # chromedriver wants a JSON object on every POST
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"} if data is not None else {}
        # http.client, not urllib: no *_proxy variable can send this elsewhere.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except socket.timeout:
            raise WebDriverError("client timeout", f"no answer from chromedriver in {timeout:g}s", command)
        except (ConnectionError, http.client.HTTPException) as e:
            raise WebDriverError("chromedriver gone", f"{e}; its log ends: {self.log()[-1000:]}", command)
        finally:
            conn.close()
        try:
            value = json.loads(raw.decode("utf-8")).get("value") if raw else None
        except ValueError:
            raise WebDriverError("bad answer", f"HTTP {resp.status}: {raw[:500]!r}", command)
        if resp.status >= 400:
            err = value.get("error", f"HTTP {resp.status}") if isinstance(value, dict) else f"HTTP {resp.status}"
            msg = value.get("message", "") if isinstance(value, dict) else str(value)
            if msg.startswith(err + ": "):
                msg = msg[len(err) + 2:]
            raise WebDriverError(err, msg, command)
        return value

    def _cmd(self, method, path, body=None, timeout=None):
        if self.session_id is None:
            raise WebDriverError("no session", "the Browser is not started (use it in a with block)")
        return self._http(method, f"/session/{self.session_id}{path}", body, timeout)

    def _wrap(self, v):
        if isinstance(v, dict):
            if ELEMENT_KEY in v and len(v) == 1:
                return Element(self, v[ELEMENT_KEY])
            return {k: self._wrap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self._wrap(x) for x in v]
        return v

    @staticmethod
    def _unwrap(v):
        if isinstance(v, Element):
            return {ELEMENT_KEY: v.id}
        if isinstance(v, dict):
            return {k: Browser._unwrap(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [Browser._unwrap(x) for x in v]
        return v

    # -- navigation ---------------------------------------------------------

    def get(self, url):
        """Opens url and waits for its load event (bounded by TIMEOUT)."""
        self._cmd("POST", "/url", {"url": url})

    @property
    def current_url(self):
        return self._cmd("GET", "/url")

    @property
    def title(self):
        return self._cmd("GET", "/title")

    def source(self):
        """The page's DOM serialized as HTML."""
        return self._cmd("GET", "/source")

    def back(self):
        self._cmd("POST", "/back")

    def refresh(self):
        self._cmd("POST", "/refresh")

    # -- elements -----------------------------------------------------------

    def find(self, css):
        """The first element matching a CSS selector; NoSuchElement if none."""
        return _find(self, "", css)

    def find_all(self, css):
        """Every element matching a CSS selector (maybe none)."""
        return _find_all(self, "", css)

    def wait_for(self, css, timeout=10):
        """Polls until an element matches css and returns it; WaitTimeout
        naming the selector after timeout seconds."""
        try:
            return self.wait_until(lambda: self.find_all(css)[:1], timeout)[0]
        except WaitTimeout:
            raise WaitTimeout("timeout", f"no element matches {css!r} after {timeout:g}s "
                              f"(page {self._safe_url()})") from None

    def wait_until(self, fn, timeout=10, interval=0.05):
        """Calls fn until it returns something true and returns that. A
        WebDriverError from fn (a stale element, one not there yet) counts
        as not yet. WaitTimeout after timeout seconds."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                v = fn()
                if v:
                    return v
            except WebDriverError as e:
                if isinstance(e, WaitTimeout) or e.error in ("chromedriver gone", "client timeout", "no session"):
                    raise
                last = e
            if time.monotonic() >= deadline:
                what = getattr(fn, "__name__", "condition")
                raise WaitTimeout("timeout", f"{what} still false after {timeout:g}s"
                                  + (f"; last error: {last}" if last else "")
                                  + f" (page {self._safe_url()})")
            time.sleep(interval)

    def _safe_url(self):
        try:
            return self.current_url
        except WebDriverError:
            return "?"

    # -- scripts, cookies, window --------------------------------------------

    def execute(self, script, *args):
        """Runs script as a function body (use `return`; arguments[0]...);
        Elements may be passed and come back as Elements. A thrown
        exception is a WebDriverError "javascript error"."""
        v = self._cmd("POST", "/execute/sync", {"script": script, "args": self._unwrap(list(args))})
        return self._wrap(v)

    def execute_async(self, script, *args):
        """Like execute, but the script calls arguments[arguments.length-1](value)
        to finish (bounded by the script timeout)."""
        v = self._cmd("POST", "/execute/async", {"script": script, "args": self._unwrap(list(args))})
        return self._wrap(v)

    def screenshot(self, path):
        """Writes the viewport as a PNG file; returns path."""
        png = base64.b64decode(self._cmd("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)
        return path

    def add_cookie(self, name, value, **fields):
        """Sets a cookie for the current page's domain (open a page of it
        first). fields: path, domain, secure, httpOnly, expiry, sameSite."""
        self._cmd("POST", "/cookie", {"cookie": dict(name=name, value=value, **fields)})

    def cookies(self):
        """The current page's cookies, as the W3C dicts (name, value, path, ...)."""
        return self._cmd("GET", "/cookie")

    def delete_cookies(self):
        self._cmd("DELETE", "/cookie")

    def set_size(self, w, h):
        """Makes the viewport (window.innerWidth x innerHeight) w x h CSS
        pixels. Headless chromium still counts a window frame (the outer
        size is larger than the viewport), so the window is grown by the
        difference measured."""
        w, h = int(w), int(h)
        self._cmd("POST", "/window/rect", {"width": w, "height": h})
        self._fit_viewport(w, h)

    def _fit_viewport(self, w, h):
        inner = "return [window.innerWidth, window.innerHeight]"
        iw, ih = self.execute(inner)
        if (iw, ih) != (w, h):
            r = self._cmd("GET", "/window/rect")
            self._cmd("POST", "/window/rect", {"width": r["width"] + w - iw, "height": r["height"] + h - ih})
            iw, ih = self.execute(inner)
            if (iw, ih) != (w, h):
                raise WebDriverError("window size", f"asked for a {w}x{h} viewport, got {iw}x{ih}")
        self.size = (w, h)

    def console_log(self):
        """The page's console messages since the last call (dicts with
        level, message, timestamp): JS errors show here as SEVERE."""
        return self._cmd("POST", "/se/log", {"type": "browser"})


def _find(browser, base, css):
    """base: "" for the whole page, "/element/ID" for an element's descendants."""
    try:
        v = browser._cmd("POST", f"{base}/element", {"using": "css selector", "value": css})
    except WebDriverError as e:
        if e.error == "no such element":
            raise NoSuchElement("no such element",
                                f"no element matches {css!r} (page {browser._safe_url()})") from None
        raise
    return Element(browser, v[ELEMENT_KEY])


def _find_all(browser, base, css):
    v = browser._cmd("POST", f"{base}/elements", {"using": "css selector", "value": css})
    return [Element(browser, e[ELEMENT_KEY]) for e in v]


class Element:
    """An element of the page (a W3C element reference)."""

    def __init__(self, browser, element_id):
        self.browser = browser
        self.id = element_id

    def __repr__(self):
        return f"<Element {self.id}>"

    def __eq__(self, other):
        return isinstance(other, Element) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def _cmd(self, method, what, body=None):
        return self.browser._cmd(method, f"/element/{self.id}{what}", body)

    def click(self):
        """A real mouse click at the element's centre (scrolled into view);
        an "element click intercepted" error if something covers it."""
        self._cmd("POST", "/click")

    def send_keys(self, text):
        """Types text into the element (focused first). Special keys are
        the WebDriver code points, e.g. "\\ue007" for Enter."""
        self._cmd("POST", "/value", {"text": str(text)})

    def clear(self):
        self._cmd("POST", "/clear")

    @property
    def text(self):
        """The rendered text (what a person sees; hidden parts left out)."""
        return self._cmd("GET", "/text")

    def attr(self, name):
        """The HTML attribute's value, or None. It is not what was typed
        into a field (the value attribute stays the initial one): use
        prop("value") for that."""
        return self._cmd("GET", f"/attribute/{name}")

    def prop(self, name):
        """The DOM property (el[name]), e.g. "value", "checked", "disabled"."""
        return self._cmd("GET", f"/property/{name}")

    @property
    def tag(self):
        return self._cmd("GET", "/name")

    @property
    def displayed(self):
        return self._cmd("GET", "/displayed")

    @property
    def enabled(self):
        return self._cmd("GET", "/enabled")

    def find(self, css):
        """The first descendant matching css; NoSuchElement if none."""
        return _find(self.browser, f"/element/{self.id}", css)

    def find_all(self, css):
        return _find_all(self.browser, f"/element/{self.id}", css)
