"""What the checks found, on the review page, in a real browser (Debian's chromium, Playwright).

Run by ReviewBrowserTests.theReviewPageSaysWhatEachCheckFoundInWords, which makes a batch
whose sounds the sandbox makes wrong on purpose and says, in EXPECTED_JSON, what each take
should say (patterns, one a finding) and how many rows' latest takes are flagged.

    python3 Tests/Browser/checks.py URL SCREENSHOT_FOLDER EXPECTED_JSON
"""

import json
import os
import re
import sys

import chromium
from playwright.sync_api import expect, sync_playwright

address, shots, expected_file = sys.argv[1], sys.argv[2], sys.argv[3]
with open(expected_file) as file:
    expected = json.load(file)
expect.set_options(timeout=15_000)


def each_take_says_what_was_found(page):
    rows = page.locator(".row")
    expect(rows).to_have_count(len(expected["rows"]))
    for index, row in enumerate(expected["rows"]):
        node = rows.nth(index)
        expect(node).to_contain_text(row["name"])
        for take, patterns in row["takes"].items():
            take_node = node.locator(f'.take[data-take="{take}"]')
            expect(take_node).to_have_count(1)
            found = take_node.locator(".findings")
            if not patterns:
                expect(found).to_have_count(0)
                continue
            expect(found).to_have_text(re.compile("^" + " · ".join(patterns) + "$"))
            expect(take_node).to_have_class(re.compile(r"\bflagged\b"))
            # Its loudness and true peak beside its length, unless it is silence itself.
            if patterns != ["silent"]:
                expect(take_node.locator(".facts")).to_contain_text(re.compile(r"LUFS · [-+]?\d+\.\d dBTP"))


def f_goes_to_each_flagged_take_in_turn(page):
    """From the first row's latest take, chosen when the page opens, to the flagged ones after it, round again."""
    takes = [(index, int(take)) for index, row in enumerate(expected["rows"]) for take in sorted(row["takes"])]
    start = max(take for index, take in takes if index == 0)
    after = takes.index((0, start)) + 1
    flagged = [
        (index, take)
        for index, take in takes[after:] + takes[:after]
        if expected["rows"][index]["takes"][str(take)]
    ]
    page.locator(".row").first.focus()
    for index, take in (flagged + flagged)[: len(flagged) + 1]:
        page.keyboard.press("f")
        selected = page.locator(".row.selected")
        expect(selected).to_contain_text(expected["rows"][index]["name"])
        expect(selected.locator(".take.chosen")).to_have_attribute("data-take", str(take))


def a_rows_variations_are_side_by_side_and_arrows_move_between_them(page):
    first = expected["rows"][0]
    row = page.locator(".row").first
    takes = sorted(int(take) for take in first["takes"])
    expect(row.locator(".take")).to_have_count(len(takes))
    # Side by side: the takes of the row's two variations share one line of the page.
    boxes = [row.locator(f'.take[data-take="{take}"]').bounding_box() for take in takes]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 2, f"the takes are not side by side: {boxes}"
    assert len({row.locator(f'.take[data-take="{take}"]').get_attribute("data-job") for take in takes}) == 2
    row.focus()
    for _ in takes:
        page.keyboard.press("ArrowLeft")
    expect(row.locator(".take.chosen")).to_have_attribute("data-take", str(takes[0]))
    page.keyboard.press("ArrowRight")
    expect(row.locator(".take.chosen")).to_have_attribute("data-take", str(takes[1]))
    expect(page.locator("#more")).to_have_text(f"{len(expected['rows'])} rows")


def the_filter_shows_the_flagged_rows_or_the_others(page):
    page.select_option("#checks", "flagged")
    expect(page.locator(".row")).to_have_count(expected["flagged"])
    page.screenshot(path=os.path.join(shots, "review-checks-1280.png"), full_page=True)
    page.select_option("#checks", "clean")
    expect(page.locator(".row")).to_have_count(expected["clean"])
    page.select_option("#checks", "")
    expect(page.locator(".row")).to_have_count(len(expected["rows"]))


def main():
    with sync_playwright() as playwright:
        browser, context, errors = chromium.context(playwright)
        page = context.new_page()
        page.goto(address)
        each_take_says_what_was_found(page)
        a_rows_variations_are_side_by_side_and_arrows_move_between_them(page)
        f_goes_to_each_flagged_take_in_turn(page)
        the_filter_shows_the_flagged_rows_or_the_others(page)
        browser.close()
        assert not errors, f"the page said something went wrong: {errors}"
    print("review page, checks: all passed")


if __name__ == "__main__":
    main()
