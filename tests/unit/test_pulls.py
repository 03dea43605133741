"""What a durable feed believes the server still owes it, pull by pull (`services.bus.pullfeed.Pulls`)."""

from __future__ import annotations

from services.bus.pullfeed import Pulls

EXPIRES_S = 2.0
GRACE_S = 1.0


def two_pulls(first: int, second: int) -> Pulls:
    """Two pulls sent half a second apart."""
    pulls = Pulls(grace_s=GRACE_S)
    pulls.issued(first, expires_at=EXPIRES_S)
    pulls.issued(second, expires_at=0.5 + EXPIRES_S)
    return pulls


def test_an_expiry_takes_off_what_the_server_says_was_left_unfilled() -> None:
    pulls = two_pulls(3, 5)
    for _ in range(4):
        pulls.filled()
    assert pulls.owed == 4
    # The first pull is done; the 408 of the second ends what it still owed.
    pulls.ended(4, now=0.5 + EXPIRES_S, expired=True)
    assert pulls.owed == 0


def test_a_pull_that_died_with_its_server_is_no_longer_owed_after_its_expiry() -> None:
    # A restarted server forgets its waiting pulls and never sends their 408: counting them as owed kept the feed
    # from pulling for its free slots (45 of 2,048 every 1.5 s in the server-restart chaos runs).
    pulls = Pulls(grace_s=GRACE_S)
    pulls.issued(2048, expires_at=EXPIRES_S)
    for _ in range(45):
        pulls.filled()
    pulls.issued(45, expires_at=1.5 + EXPIRES_S)  # a bridging pull on the new server
    pulls.sweep(now=EXPIRES_S + GRACE_S - 0.1)
    assert pulls.owed == 2003 + 45  # within the grace period the 408 may still come
    pulls.sweep(now=EXPIRES_S + GRACE_S + 0.1)
    assert pulls.owed == 45


def test_the_late_408_of_a_pull_already_forgotten_ends_no_other_pull() -> None:
    pulls = Pulls(grace_s=GRACE_S)
    pulls.issued(10, expires_at=EXPIRES_S)
    pulls.sweep(now=EXPIRES_S + GRACE_S + 0.1)
    pulls.issued(20, expires_at=EXPIRES_S + GRACE_S + 0.1 + EXPIRES_S)
    pulls.ended(10, now=EXPIRES_S + GRACE_S + 0.2, expired=True)
    assert pulls.owed == 20


def test_a_conflict_takes_what_it_reports_off_the_oldest_pulls() -> None:
    # A 409 (leadership change, a server limit) names how many messages will not come, not which pull it ended.
    pulls = Pulls(grace_s=GRACE_S)
    pulls.issued(4, expires_at=EXPIRES_S)
    pulls.issued(6, expires_at=EXPIRES_S + 0.1)
    pulls.ended(7, now=0.2, expired=False)
    assert pulls.owed == 3
    pulls.filled()
    pulls.filled()
    pulls.filled()
    assert pulls.owed == 0
    pulls.filled()  # one more than believed owed (a pull forgotten too early still delivering): never below zero
    assert pulls.owed == 0


def test_a_silence_forgets_every_pull() -> None:
    pulls = Pulls(grace_s=GRACE_S)
    pulls.issued(8, expires_at=EXPIRES_S)
    pulls.clear()
    assert pulls.owed == 0
    pulls.ended(8, now=EXPIRES_S, expired=True)
    assert pulls.owed == 0


def test_an_expiry_counts_what_the_server_reports_when_it_split_a_batch_over_two_pulls() -> None:
    # The server hands a batch round-robin over its waiting pulls: 5 messages over pulls of 5 and 5 leave the first
    # with 2 unfilled, whatever order the feed counted them in.
    pulls = two_pulls(5, 5)
    for _ in range(5):
        pulls.filled()
    pulls.ended(2, now=EXPIRES_S, expired=True)
    assert pulls.owed == 3
