"""The fault harnesses' verdict on requests in doubt settled by callbacks (CALLBACKS=1),
shared by chaos.sh and team-chaos.sh: one owner for the goal."""

# Issue 24's goal: at most this share of the jobs in doubt paid twice.
MOST_PAID_TWICE = 0.05


def callbacks_verdict(jobs, duplicates):
    """What the line adds, and whether the goal was met. Each job says how many of its
    requests got no answer ("unanswered") and whether its callback settled it ("settled")."""
    in_doubt = sum(1 for j in jobs if j["unanswered"] > 0)
    settled = sum(1 for j in jobs if j["settled"])
    line = f" in_doubt={in_doubt} settled_by_callback={settled} paid_twice={duplicates / max(in_doubt, 1):.1%} of in doubt"
    return line, duplicates <= MOST_PAID_TWICE * in_doubt
