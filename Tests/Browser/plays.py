"""Every sound plays on a machine that did not save it (Debian's chromium, Playwright).

Run by TeamSoundsTests (Tests/soundbatchTests), which makes a batch on machine A with a
PostgreSQL ledger and starts `soundbatch review` as machine B, whose folder holds no sound:
each Play must load its sound from the ledger, and the page must say nothing went wrong.

    python3 Tests/Browser/plays.py URL SCREENSHOT_FOLDER TAKES
"""

import os
import re
import sys

import chromium
from playwright.sync_api import expect, sync_playwright
address, shots, takes = sys.argv[1], sys.argv[2], int(sys.argv[3])
expect.set_options(timeout=15_000)


def every_play_loads_its_sound(page):
    page.goto(address)
    plays = page.get_by_role("button", name=re.compile(r"^Play .+ take \d+$"))
    expect(plays).to_have_count(takes)
    names = [plays.nth(index).get_attribute("aria-label") for index in range(takes)]
    for name in names:
        page.get_by_role("button", name=name, exact=True).click()
        # Played: the player has the sound's length and moved past its start.
        page.wait_for_function(
            "() => { const p = document.getElementById('player');"
            " return p.error === null && p.duration > 0 && p.currentTime > 0 }"
        )
        expect(page.get_by_role("button", name=name.replace("Play", "Pause", 1), exact=True)).to_be_visible()
    page.screenshot(path=os.path.join(shots, "review-team-1280.png"))
    print(f"{len(names)} sounds played")


def main():
    with sync_playwright() as playwright:
        browser, context, errors = chromium.context(playwright)
        every_play_loads_its_sound(context.new_page())
        browser.close()
        assert not errors, f"the page said something went wrong: {errors}"


main()
