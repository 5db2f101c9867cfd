extension ReviewPageAssets {
    /// The page's script, second part: selection and keys, playing, verdicts, re-rolls
    /// and the search. It runs after `scriptRows`, in the same file the browser gets.
    static let scriptActions = #"""
        // MARK: Selection and keys

        function rowNode(index) { return list.children[index]; }

        function select(index, focus = true) {
          if (index < 0 || index >= rows.length) return;
          rowNode(current)?.classList.remove("selected");
          rowNode(current)?.removeAttribute("aria-current");
          current = index;
          const node = rowNode(index);
          node.classList.add("selected");
          node.setAttribute("aria-current", "true");
          if (focus) {
            node.focus({ preventScroll: true });
            node.scrollIntoView({ block: "nearest" });
          }
          if (index >= rows.length - 5) load(false);
        }

        function markChosenTake(node, job) {
          for (const take of node.querySelectorAll(".take")) {
            take.classList.toggle("chosen", Number(take.dataset.take) === chosenTake.get(job));
          }
        }

        function moveTake(step) {
          const row = rows[current];
          if (!row) return;
          const numbers = row.takes.map((take) => take.take);
          const at = numbers.indexOf(chosenTake.get(row.job));
          const next = numbers[Math.min(numbers.length - 1, Math.max(0, at + step))];
          chosenTake.set(row.job, next);
          markChosenTake(rowNode(current), row.job);
        }

        function selectedTake() {
          const row = rows[current];
          return row ? { row, take: row.takes.find((take) => take.take === chosenTake.get(row.job)) } : null;
        }

        list.addEventListener("click", (event) => {
          const node = event.target.closest(".row");
          if (!node) return;
          select([...list.children].indexOf(node), false);
          const take = event.target.closest(".take");
          if (take) {
            chosenTake.set(Number(node.dataset.job), Number(take.dataset.take));
            markChosenTake(node, Number(node.dataset.job));
          }
        });

        document.addEventListener("keydown", (event) => {
          if (event.altKey || event.ctrlKey || event.metaKey || $("reroll").open) return;
          if (event.target.closest("input, textarea, select")) return;
          // A button that has the focus from the keyboard is pressed with Space or Enter, as any button.
          if (event.target.closest("button") && (event.key === " " || event.key === "Enter")) return;
          const chosen = selectedTake();
          const actions = {
            " ": () => chosen && chosen.take.state === "completed" && togglePlay(chosen.row.job, chosen.take.take),
            "j": () => select(current + 1), "ArrowDown": () => select(current + 1),
            "k": () => select(Math.max(current - 1, 0)), "ArrowUp": () => select(Math.max(current - 1, 0)),
            "ArrowRight": () => moveTake(1), "ArrowLeft": () => moveTake(-1),
            "p": () => chosen && judge(chosen.row.job, chosen.take.take, "kept"),
            "x": () => chosen && judge(chosen.row.job, chosen.take.take, "rejected"),
            "u": () => chosen && judge(chosen.row.job, chosen.take.take, null),
            "r": () => chosen && finished(chosen.row.state) && openReroll({ jobs: [chosen.row.job] }, chosen.row),
          };
          const action = actions[event.key.length === 1 ? event.key.toLowerCase() : event.key];
          if (!action) return;
          event.preventDefault();
          action();
        });

        // MARK: Playing

        function togglePlay(job, take) {
          if (playing && playing.job === job && playing.take === take) {
            if (player.paused) player.play().catch((error) => say(`cannot play: ${error.message}`));
            else player.pause();
            return;
          }
          playing = { job, take };
          player.src = `/audio/${job}/${take}`;
          player.play().catch((error) => say(`cannot play: ${error.message}`));
          showPlaying();
        }

        function seek(row, take, event) {
          if (!take.saved) return;
          const fraction = event.offsetX / event.currentTarget.clientWidth;
          if (!playing || playing.job !== row.job || playing.take !== take.take) togglePlay(row.job, take.take);
          const jump = () => { player.currentTime = fraction * player.duration; };
          if (player.duration) jump(); else player.addEventListener("loadedmetadata", jump, { once: true });
        }

        function showPlaying() {
          for (const play of list.querySelectorAll("button.play")) {
            const take = play.closest(".take"), row = play.closest(".row");
            const on = playing && !player.paused && Number(row.dataset.job) === playing.job && Number(take.dataset.take) === playing.take;
            const label = play.getAttribute("aria-label").replace(/^(Play|Pause) /, "");
            play.setAttribute("aria-label", `${on ? "Pause" : "Play"} ${label}`);
            play.textContent = on ? "❚❚ Pause" : "▶ Play";
          }
        }

        for (const name of ["play", "pause", "ended"]) player.addEventListener(name, showPlaying);
        player.addEventListener("timeupdate", () => {
          if (!playing) return;
          const node = list.querySelector(`.row[data-job="${playing.job}"] .take[data-take="${playing.take}"] canvas`);
          if (node) drawWave(node, player.duration ? player.currentTime / player.duration : 0);
        });
        player.addEventListener("error", () => { if (player.src) say("this sound could not be played: its file may have moved"); });

        // MARK: Verdicts

        async function judge(job, take, verdict) {
          try {
            const answer = await api("/api/verdict", { job, take, verdict });
            replaceRow(answer.row);
            showCounts(answer.counts);
            const row = answer.row;
            say(`${row.name} take ${take}: ${verdict ?? "verdict cleared"}`);
          } catch (error) {
            say(error.message);
          }
        }

        // MARK: Re-rolls

        async function openReroll(asked, row) {
          let plan;
          try {
            plan = await api("/api/reroll/plan", asked);
          } catch (error) {
            say(error.message);
            return;
          }
          const dialog = $("reroll");
          const count = plan.jobs.length;
          $("reroll-title").textContent = row ? `Re-roll ${row.name}` : `Re-roll ${plural(count, "rejected row")}`;
          const cost = plan.credits == null ? "a cost the service will say" : `about ${plan.credits.toFixed(2)} credits`;
          $("reroll-summary").textContent =
            `${plural(count, "new take")}, ${cost}, sent to ${plan.service} at the batch's pace and saved in ${plan.folder}. ` +
            "Earlier takes stay, with their verdicts.";
          const names = $("reroll-rows");
          names.replaceChildren(...plan.rows.slice(0, 50).map((name) => element("li", "", name)));
          if (plan.rows.length > 50) names.append(element("li", "", `and ${plan.rows.length - 50} more`));
          $("reroll-warning").textContent = plan.likelyToFailAgain.length
            ? `Refused as invalid before, and likely again: ${plan.likelyToFailAgain.join(", ")}` : "";
          const edit = $("reroll-edit"), prompt = $("reroll-prompt");
          edit.hidden = !row;
          prompt.value = row ? row.takes[row.takes.length - 1].prompt : "";
          $("reroll-error").textContent = plan.busy ? "A re-roll is under way; wait for it to end." : "";
          const send = $("reroll-send");
          send.textContent = `Send ${plural(count, "re-roll")}`;
          send.disabled = plan.busy;
          send.onclick = async () => {
            send.disabled = true;
            try {
              const body = { jobs: plan.jobs };
              if (row && prompt.value.trim() !== row.takes[row.takes.length - 1].prompt) body.prompt = prompt.value;
              const status = await api("/api/reroll", body);
              dialog.close();
              follow(status);
            } catch (error) {
              $("reroll-error").textContent = error.message;
              send.disabled = false;
            }
          };
          dialog.showModal();
          send.focus();
        }

        $("reroll-cancel").addEventListener("click", () => $("reroll").close());
        $("reroll").addEventListener("close", () => rowNode(current)?.focus({ preventScroll: true }));
        $("reroll-rejected").addEventListener("click", () => openReroll({ rejected: true }, null));

        // While a re-roll is under way, its rows are read again every second and a half: the
        // new take shows as generating, then as a sound, without a reload.
        function follow(status) {
          say(status.message);
          if (status.busy && pollTimer === null) pollTimer = setInterval(poll, 1500);
        }

        async function poll() {
          try {
            const status = await api("/api/reroll");
            say(status.message);
            await refreshRows(status.jobs);
            if (!status.busy) {
              clearInterval(pollTimer);
              pollTimer = null;
            }
          } catch (error) {
            say(error.message);
          }
        }

        async function refreshRows(jobs) {
          const shown = jobs.filter((job) => rows.some((row) => row.job === job));
          for (let from = 0; from < shown.length; from += 200) {
            const page = await api(`/api/rows?limit=200&jobs=${shown.slice(from, from + 200).join(",")}`);
            showCounts(page.counts);
            for (const row of page.rows) replaceRow(row);
          }
        }

        // MARK: Searching

        let searchTimer = null;
        $("search").addEventListener("input", (event) => {
          clearTimeout(searchTimer);
          searchTimer = setTimeout(() => { query.q = event.target.value.trim(); load(true); }, 150);
        });
        for (const name of ["state", "verdict"]) {
          $(name).addEventListener("change", (event) => { query[name] = event.target.value; load(true); });
        }

        load(true);
        api("/api/reroll").then(follow).catch(() => {});
        """#
}
