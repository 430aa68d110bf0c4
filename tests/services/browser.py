"""Headless Chromium from the machine's packages (Debian: `chromium`, `chromium-driver`), driven by Selenium.

Never a downloaded browser: Selenium is pointed at both binaries and its manager is kept offline. Each session gets
its own profile folder, removed on quit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("CASCADE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CASCADE_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class Browser:
    """A Chromium session. `driver` is Selenium's WebDriver; `quit()` ends it and removes its profile."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        for path in (CHROMIUM, CHROMEDRIVER):
            if not Path(path).exists():
                raise FileNotFoundError(f"{path} (apt-get install chromium chromium-driver)")
        os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or a driver
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="cascade-chromium-")
        options = Options()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.driver: Any = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # --- helpers for the page's tests ------------------------------------------------------------------------

    def open(self, url: str, timeout_s: float = 30) -> None:
        """Load `url` with a recorder of Content-Security-Policy violations, and wait for the page's script to run."""
        if not getattr(self, "_recording", False):
            # CDP-injected scripts run before the page's own and are not subject to its CSP.
            self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _RECORD_VIOLATIONS})
            self._recording = True
        self.driver.get(url)
        self.until("return document.documentElement.dataset.ready === 'true'", timeout_s, "the page's script ran")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def until(self, script: str, timeout_s: float = 30, what: str = "", *args: Any) -> Any:
        """Poll `script` (a function body returning a value) until it returns something truthy; that value."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout_s, poll_frequency=0.05).until(
                lambda d: d.execute_script(script, *args)
            )
        except TimeoutException:
            raise AssertionError(f"not within {timeout_s} s: {what or script}") from None

    def violations(self) -> list[str]:
        return list(self.js("return window.__cspViolations || []"))

    def errors(self) -> list[str]:
        """Console errors since the last call (Chromium logs failed loads and uncaught exceptions here)."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def viewport(self, width: int, height: int, mobile: bool) -> None:
        """Emulate a screen (a phone is `mobile`: touch, device-width viewport)."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1, "mobile": mobile}
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


_RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ${where}`);
});
"""
