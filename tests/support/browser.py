"""Debian's Chromium driven by Playwright (never Playwright's own browser download)."""

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach outside hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def launch_chromium(playwright):
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Chromium is missing: `make test` installs the Debian package `chromium`")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def has_horizontal_overflow(page) -> bool:
    """True when the page is wider than the viewport (a phone layout bug)."""
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
