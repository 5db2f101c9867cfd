"""The HTML spend report in a real browser (Debian's chromium, Playwright), at a laptop's
width and a phone's: no axe violation that is serious or critical, nothing scrolling
sideways but the tables' own boxes, each of which the keyboard reaches.

Run by ReviewBrowserTests.theSpendReportReadsOnAPhoneAndPassesAnAccessibilityAudit.

    python3 Tests/Browser/report.py REPORT_HTML SCREENSHOT_FOLDER
"""

import os
import sys

import chromium
from playwright.sync_api import expect, sync_playwright

report, shots = sys.argv[1], sys.argv[2]


def main():
    with sync_playwright() as playwright:
        browser, context, errors = chromium.context(playwright)
        page = context.new_page()
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto("file://" + os.path.abspath(report))
            expect(page.locator("main h1")).to_be_visible()
            page_width = page.evaluate("document.documentElement.scrollWidth")
            assert page_width <= width, f"the page scrolls sideways at {width} px: {page_width} px wide"
            # Each table's box is reached by the keyboard, so a table wider than the phone can be scrolled.
            boxes = page.locator(".scroll")
            for index in range(boxes.count()):
                page.keyboard.press("Tab")
                expect(boxes.nth(index)).to_be_focused()
            page.screenshot(path=os.path.join(shots, f"report-{width}.png"), full_page=True)
            chromium.audit(page, f"{width} px")
        browser.close()
        assert not errors, f"the page said something went wrong: {errors}"
    print("spend report: all checks passed")


if __name__ == "__main__":
    main()
