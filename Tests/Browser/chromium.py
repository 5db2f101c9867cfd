"""Debian's chromium through Playwright, as the browser scripts here open it.

`context(playwright)` launches it (sound allowed to play without a click), opens a 1280 x 900
context and gathers what the page itself says went wrong (a script error, a console error,
a failed load) into the list it returns beside the browser; `origin` keeps only errors of
pages there (a script that opens a forging page of another origin expects that one refused).
`audit(page, where)` runs axe-core (axe-playwright-python) on the page as it is, and fails on
any serious or critical violation, naming each.
"""

import os

CHROMIUM = os.environ.get("SOUNDBATCH_CHROMIUM", "/usr/bin/chromium")


def context(playwright, origin=None):
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
    )
    opened = browser.new_context(viewport={"width": 1280, "height": 900})
    errors = []
    opened.on("weberror", lambda error: errors.append(str(error.error)))

    def console(message):
        if message.type != "error":
            return
        if origin is None or (message.page and message.page.url.startswith(origin)):
            errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    opened.on("console", console)
    return browser, opened, errors


def audit(page, where):
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    grave = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not grave, f"axe at {where}: " + "; ".join(
        f"{v['impact']} {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:3]}" for v in grave
    )
