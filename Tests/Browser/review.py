"""The review page in a real browser: Debian's chromium, driven by Playwright for Python.

Run by ReviewBrowserTests (Tests/soundbatchTests), which makes a batch of five rows
against a sandbox and starts `soundbatch review`; this script gets the printed address
and a folder for its screenshots, and exits non-zero with the first thing that went wrong.

    python3 Tests/Browser/review.py URL SCREENSHOT_FOLDER
"""

import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import chromium
from playwright.sync_api import expect, sync_playwright

address, shots = sys.argv[1], sys.argv[2]
origin = "{0.scheme}://{0.netloc}".format(urlsplit(address))
token = address.split("token=", 1)[1]
expect.set_options(timeout=15_000)


def status_of(path, method="GET", headers=None, body=None):
    """The status a raw request gets: what a script or another site could send."""
    request = urllib.request.Request(origin + path, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def forged_requests_are_refused():
    status, text = status_of("/")
    assert status == 403 and "door" not in text, f"the page without its token: {status}"
    assert status_of("/api/rows")[0] == 403, "rows without the token"
    assert status_of("/audio/1/1")[0] == 403, "audio without the token"
    rebinding = {"Host": "evil.example:80", "Cookie": "x=1"}
    assert status_of("/?token=" + token, headers=rebinding)[0] == 403, "a Host that is a name (DNS rebinding)"
    verdict = json.dumps({"job": 1, "take": 1, "verdict": "rejected"}).encode()
    # The token alone, as a script that read the address might send it, from another origin.
    foreign = {"Content-Type": "application/json", "X-Review-Token": token, "Origin": "http://evil.example"}
    assert status_of("/api/verdict", "POST", foreign, verdict)[0] == 403, "a change from another origin"
    # A form post from another site: no JSON, no header, no cookie (SameSite=Strict).
    form = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
    assert status_of("/api/verdict", "POST", form, verdict)[0] == 403, "a cross-site form post"
    assert status_of("/api/reroll", "POST", foreign, json.dumps({"jobs": [1]}).encode())[0] == 403


def eventually(page, expression, seconds=15):
    """Polls `expression` in the page (wait_for_function would need the 'unsafe-eval' the page's CSP refuses)."""
    for _ in range(seconds * 10):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {expression}")


def button(page, name):
    return page.get_by_role("button", name=name, exact=True)


def pressed(page, name):
    expect(button(page, name)).to_have_attribute("aria-pressed", "true")


def not_pressed(page, name):
    expect(button(page, name)).to_have_attribute("aria-pressed", "false")


def review(page):
    page.goto(address)
    expect(page.locator(".row")).to_have_count(5)
    # The token is traded for a cookie and taken out of the address bar.
    assert "token" not in page.url, page.url

    # By keyboard, as in photo tools: the first row is selected.
    page.keyboard.press("p")
    pressed(page, "Keep door-creak take 1")
    page.keyboard.press("j")
    page.keyboard.press("x")
    pressed(page, "Reject footsteps-gravel take 1")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("p")
    pressed(page, "Keep sword-unsheathe take 1")
    page.keyboard.press("u")
    not_pressed(page, "Keep sword-unsheathe take 1")
    page.keyboard.press("k")
    page.keyboard.press(" ")
    expect(button(page, "Pause footsteps-gravel take 1")).to_be_visible()
    eventually(page, "document.getElementById('player').currentTime > 0")
    page.keyboard.press(" ")
    expect(button(page, "Play footsteps-gravel take 1")).to_be_visible()

    # By mouse; a click gives the keys back to the row (Space plays, it does not click again).
    button(page, "Keep rain-window take 1").click()
    pressed(page, "Keep rain-window take 1")
    button(page, "Reject ui-confirm take 1").click()
    pressed(page, "Reject ui-confirm take 1")
    button(page, "Play ui-confirm take 1").click()
    expect(button(page, "Pause ui-confirm take 1")).to_be_visible()
    page.keyboard.press(" ")
    expect(button(page, "Play ui-confirm take 1")).to_be_visible()
    pressed(page, "Reject ui-confirm take 1")
    expect(page.locator("#counts")).to_have_text("2 kept · 2 rejected · 1 unreviewed")

    # Verdicts are in the ledger: a reload shows them.
    page.reload()
    expect(page.locator(".row")).to_have_count(5)
    pressed(page, "Keep door-creak take 1")
    pressed(page, "Reject footsteps-gravel take 1")
    not_pressed(page, "Keep sword-unsheathe take 1")
    pressed(page, "Keep rain-window take 1")
    pressed(page, "Reject ui-confirm take 1")

    # Found by text in a column, by verdict, by state.
    page.get_by_role("searchbox").fill("Cabin Interior")
    expect(page.locator(".row")).to_have_count(1)
    expect(page.locator(".row .name")).to_have_text("rain-window")
    page.get_by_role("searchbox").fill("")
    expect(page.locator(".row")).to_have_count(5)
    page.get_by_label("Verdict").select_option("rejected")
    expect(page.locator(".row")).to_have_count(2)
    page.get_by_label("Verdict").select_option("")
    page.get_by_label("State").select_option("failed")
    expect(page.locator(".row")).to_have_count(0)
    expect(page.locator("#more")).to_have_text("No row matches.")
    page.get_by_label("State").select_option("")
    expect(page.locator(".row")).to_have_count(5)

    # A re-roll: what it sends and may cost first, then, confirmed, its take on the page.
    button(page, "Re-roll door-creak").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("1 new take, about")
    expect(dialog).to_contain_text("credits")
    page.get_by_label("Prompt for the new take").fill("Old wooden door creaking open, more reverb")
    button(page, "Send 1 re-roll").click()
    expect(dialog).to_be_hidden()
    expect(button(page, "Play door-creak take 2")).to_be_enabled(timeout=60_000)
    expect(page.locator("#status")).to_contain_text("Re-rolled 1 row: 1 new sound", timeout=20_000)
    pressed(page, "Keep door-creak take 1")
    not_pressed(page, "Keep door-creak take 2")
    expect(page.locator('.row[data-job="1"] .take-prompt')).to_contain_text("more reverb")


def forged_from_another_page(context):
    """A page of another origin posts a verdict with the browser's cookies, as CSRF would."""
    page = context.new_page()
    page.goto("about:blank")
    page.evaluate(
        """url => fetch(url + "/api/verdict", {method: "POST", mode: "no-cors", credentials: "include",
                       headers: {"Content-Type": "text/plain"},
                       body: JSON.stringify({job: 3, take: 1, verdict: "rejected"})}).catch(() => null)""",
        origin,
    )
    page.close()


def narrow(context):
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(origin + "/")
    expect(page.locator(".row")).to_have_count(5)
    page.wait_for_timeout(300)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px: {width} px wide"
    page.screenshot(path=os.path.join(shots, "review-390.png"))
    chromium.audit(page, "390 px")
    # Scrolled to the last row, a phone still shows the counts and the search.
    page.locator(".row").last.scroll_into_view_if_needed()
    page.mouse.wheel(0, 2000)
    page.wait_for_timeout(200)
    for kept_in_view in ("#counts", "#search"):
        box = page.locator(kept_in_view).bounding_box()
        assert box and 0 <= box["y"] < 844, f"{kept_in_view} left the screen when scrolled: {box}"
    assert page.evaluate("scrollY") > 0, "the list did not scroll"

    not_pressed(page, "Keep sword-unsheathe take 1")  # the forged post changed nothing
    page.close()


def main():
    forged_requests_are_refused()
    with sync_playwright() as playwright:
        # Anything the page itself says went wrong fails the test; the page of another origin
        # that forges a request is expected to be refused.
        browser, context, errors = chromium.context(playwright, origin=origin)
        page = context.new_page()
        review(page)
        page.screenshot(path=os.path.join(shots, "review-1280.png"))
        chromium.audit(page, "1280 px")
        forged_from_another_page(context)
        narrow(context)
        browser.close()
        assert not errors, f"the page said something went wrong: {errors}"
    print("review page: all checks passed")


if __name__ == "__main__":
    main()
