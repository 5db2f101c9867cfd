import Foundation

/// The review page: one HTML document, its script and its style, served as they are here.
/// They are kept in the binary, not beside it, so that a copied `soundbatch` serves them.
/// The page draws rows with the DOM (text is never parsed as HTML) a page of 50 at a time,
/// as the list is scrolled, so a batch of any size opens at once.
enum ReviewPageAssets {
    static func page(batch: String, token: String) -> String {
        let name = ReportRenderer.escapeHTML(batch)
        let states = JobState.allCases.map { "<option value=\"\($0.rawValue)\">\($0.words)</option>" }.joined()
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="review-token" content="\(token)">
            <title>Review \(name) · soundbatch</title>
            <link rel="icon" href="data:,">
            <link rel="stylesheet" href="/review.css">
            <script src="/review.js" defer></script>
            </head>
            <body>
            <header class="bar">
              <div class="title">
                <h1>Review <span class="batch">\(name)</span></h1>
                <p id="counts" aria-live="polite"></p>
              </div>
              <div class="filters" role="search">
                <label class="search">Search
                  <input type="search" id="search" placeholder="id, prompt or column" autocomplete="off" spellcheck="false">
                </label>
                <label>State
                  <select id="state"><option value="">any</option>\(states)</select>
                </label>
                <label>Verdict
                  <select id="verdict">
                    <option value="">any</option><option value="kept">kept</option>
                    <option value="rejected">rejected</option><option value="unreviewed">unreviewed</option>
                  </select>
                </label>
                <button type="button" id="reroll-rejected">Re-roll rejected rows</button>
              </div>
              <p class="keys"><kbd>Space</kbd> play · <kbd>J</kbd>/<kbd>K</kbd> or <kbd>↓</kbd>/<kbd>↑</kbd> row ·
                <kbd>←</kbd>/<kbd>→</kbd> take · <kbd>P</kbd> keep · <kbd>X</kbd> reject · <kbd>U</kbd> clear ·
                <kbd>R</kbd> re-roll</p>
              <p id="status" role="status" aria-live="polite"></p>
            </header>
            <main id="rows" aria-label="Rows of the batch"></main>
            <p id="more" aria-live="polite"></p>
            <dialog id="reroll" aria-labelledby="reroll-title">
              <h2 id="reroll-title">Re-roll</h2>
              <p id="reroll-summary"></p>
              <ul id="reroll-rows"></ul>
              <p id="reroll-warning"></p>
              <div id="reroll-edit">
                <label for="reroll-prompt">Prompt for the new take</label>
                <textarea id="reroll-prompt" rows="3"></textarea>
              </div>
              <p id="reroll-error" role="alert"></p>
              <div class="actions">
                <button type="button" id="reroll-cancel">Cancel</button>
                <button type="button" id="reroll-send" class="primary">Send</button>
              </div>
            </dialog>
            <audio id="player" preload="none"></audio>
            </body>
            </html>
            """
    }

    /// What a request without the token sees: how to get in, and nothing of the batch.
    static func refusal(_ reason: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>soundbatch review</title></head>
        <body><h1>Not without the token</h1><p>\(ReportRenderer.escapeHTML(reason)).</p></body></html>
        """
    }

    static let style = #"""
        :root {
          color-scheme: light dark;
          --bg: #f6f7f9; --card: #fff; --fg: #1c1e21; --muted: #5b6270; --line: #d5d9e0;
          --accent: #2356c4; --kept: #16794a; --rejected: #b42318; --wave: #8a94a8; --played: #2356c4;
        }
        @media (prefers-color-scheme: dark) {
          :root {
            --bg: #15171b; --card: #1e2127; --fg: #e8eaee; --muted: #a3abb9; --line: #363b45;
            --accent: #7aa2ff; --kept: #3fb27f; --rejected: #f07167; --wave: #6d7789; --played: #7aa2ff;
          }
        }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
        .bar { position: sticky; top: 0; z-index: 2; background: var(--bg); border-bottom: 1px solid var(--line); padding: .6rem 1rem .4rem; }
        .title { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem 1rem; }
        h1 { font-size: 1.15rem; margin: 0; overflow-wrap: anywhere; }
        #counts { margin: 0; color: var(--muted); }
        .filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; margin-top: .4rem; }
        .filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); gap: .15rem; }
        .filters label.search { flex: 1 1 14rem; }
        input, select, textarea { font: inherit; color: var(--fg); background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .35rem .5rem; min-height: 2.25rem; }
        .keys { font-size: .78rem; color: var(--muted); margin: .35rem 0 0; }
        @media (max-width: 40rem) {
          .bar { position: static; }
          .keys { display: none; }
        }
        kbd { font: .75rem ui-monospace, monospace; border: 1px solid var(--line); border-radius: 4px; padding: 0 .25rem; background: var(--card); }
        #status { margin: .25rem 0 0; min-height: 1.2em; font-size: .9rem; }
        main { max-width: 72rem; margin: 0 auto; padding: .75rem 1rem 1rem; display: grid; gap: .75rem; }
        #more { text-align: center; color: var(--muted); margin: 0 0 2rem; }
        .row { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: .6rem .8rem .75rem; min-width: 0; }
        .row:focus { outline: none; }
        .row.selected { border-color: var(--accent); box-shadow: 0 0 0 2px var(--accent); }
        @media (min-width: 50rem) {
          .row { display: grid; grid-template-columns: minmax(14rem, 2fr) 3fr; gap: 0 1rem; align-items: start; }
          .row > :not(.takes) { grid-column: 1; }
          .row > .takes { grid-column: 2; grid-row: 1 / span 4; margin-top: 0; }
        }
        .head { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem .6rem; }
        .name { font-size: 1rem; margin: 0; flex: 1 1 auto; overflow-wrap: anywhere; }
        .badge { font-size: .75rem; border-radius: 999px; padding: .05rem .5rem; background: var(--line); white-space: nowrap; }
        .badge.completed { background: color-mix(in srgb, var(--kept) 22%, transparent); }
        .badge.failed, .badge.generation_failed, .badge.remote_missing, .badge.invalid, .badge.ambiguous { background: color-mix(in srgb, var(--rejected) 22%, transparent); }
        .prompt { margin: .3rem 0; overflow-wrap: anywhere; }
        .columns { display: flex; flex-wrap: wrap; gap: .3rem; list-style: none; margin: 0 0 .3rem; padding: 0; font-size: .8rem; color: var(--muted); }
        .columns li { border: 1px solid var(--line); border-radius: 4px; padding: 0 .35rem; overflow-wrap: anywhere; }
        .reason { color: var(--rejected); margin: .2rem 0; overflow-wrap: anywhere; }
        .takes { list-style: none; padding: 0; margin: .4rem 0 0; display: grid; gap: .5rem; grid-template-columns: repeat(auto-fill, minmax(min(16rem, 100%), 1fr)); }
        .take { border: 1px solid var(--line); border-left-width: 4px; border-radius: 8px; padding: .4rem .5rem; min-width: 0; }
        .row.selected .take.chosen { box-shadow: 0 0 0 2px var(--accent); }
        .take.kept { border-left-color: var(--kept); }
        .take.rejected { border-left-color: var(--rejected); }
        .take-head { display: flex; flex-wrap: wrap; gap: .2rem .6rem; font-size: .85rem; color: var(--muted); }
        .take-prompt { font-style: italic; overflow-wrap: anywhere; }
        canvas.wave { display: block; width: 100%; height: 44px; margin: .3rem 0; cursor: pointer; }
        .controls { display: flex; flex-wrap: wrap; align-items: center; gap: .35rem; }
        .facts { margin-left: auto; }
        .pending { margin: .4rem 0; color: var(--muted); overflow-wrap: anywhere; }
        button { font: inherit; min-height: 2.25rem; padding: .3rem .7rem; border-radius: 6px; border: 1px solid var(--line); background: var(--card); color: var(--fg); cursor: pointer; }
        button:hover:not(:disabled) { border-color: var(--accent); }
        button:disabled { opacity: .45; cursor: default; }
        button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 3px solid var(--accent); outline-offset: 1px; }
        button.keep[aria-pressed="true"] { background: var(--kept); border-color: var(--kept); color: #fff; }
        button.reject[aria-pressed="true"] { background: var(--rejected); border-color: var(--rejected); color: #fff; }
        button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
        dialog { width: min(36rem, calc(100vw - 2rem)); border: 1px solid var(--line); border-radius: 12px; background: var(--card); color: var(--fg); padding: 1rem 1.2rem; }
        dialog::backdrop { background: rgb(0 0 0 / .45); }
        dialog h2 { margin: 0 0 .5rem; font-size: 1.1rem; overflow-wrap: anywhere; }
        #reroll-rows { max-height: 9rem; overflow: auto; margin: .3rem 0; padding-left: 1.2rem; overflow-wrap: anywhere; }
        #reroll-edit label { display: block; font-size: .85rem; color: var(--muted); margin-bottom: .2rem; }
        #reroll-edit textarea { width: 100%; resize: vertical; }
        #reroll-warning, #reroll-error { color: var(--rejected); margin: .3rem 0; }
        #reroll-warning:empty, #reroll-error:empty { display: none; }
        .actions { display: flex; justify-content: flex-end; gap: .5rem; margin-top: .6rem; }
        """#

    /// One script, written in two files: what shows the rows, then what acts on them.
    static let script = scriptRows + scriptActions
}
