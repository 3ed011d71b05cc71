"""The slot scheduler and the halting rule, without torch: plain requests and futures."""

import concurrent.futures

import numpy as np
import pytest

from trm.scheduler import DeadlineExceededError, Exit, QueueFullError, Request, Scheduler, choose_slots, decide, q_halts


def request(max_steps=16, min_steps=1, threshold=0.0, mode="act", deadline=None):
    return Request(max_steps=max_steps, min_steps=min_steps, threshold=threshold, mode=mode, deadline=deadline, future=concurrent.futures.Future())


def test_q_halts_is_one_rule_for_scalars_and_arrays():
    assert q_halts(1, 0.5) and not q_halts(1, -0.5) and not q_halts(1, 0.0)  # strictly above the threshold
    assert not q_halts(1, 0.5, min_steps=2) and q_halts(2, 0.5, min_steps=2)
    assert not q_halts(3, 1.5, threshold=2.0)
    steps, q = np.array([1, 1, 3, 3]), np.array([1.0, -1.0, 2.5, 1.0])
    assert q_halts(steps, q, threshold=2.0, min_steps=2).tolist() == [False, False, True, False]


def test_decide_halts_cuts_and_finishes():
    now = 100.0
    r = request(max_steps=3, threshold=1.0)
    r.steps = 1
    assert decide(r, 0.5, now) is None
    assert decide(r, 1.5, now) == Exit(halted=True, cut_reason=None)
    r.steps = 3
    assert decide(r, 0.5, now) == Exit(halted=False, cut_reason="max_steps")
    fixed = request(max_steps=3, mode="fixed")
    fixed.steps = 1
    assert decide(fixed, 9.0, now) is None  # fixed ignores the halting head
    fixed.steps = 3
    assert decide(fixed, -9.0, now) == Exit(halted=True, cut_reason=None)
    late = request(deadline=now)
    late.steps = 1
    assert decide(late, -1.0, now) == Exit(halted=False, cut_reason="deadline")
    assert decide(late, 1.0, now) == Exit(halted=True, cut_reason=None)  # halting beats the deadline


def test_admit_fills_free_slots_in_order_and_refills_a_freed_one():
    s = Scheduler(slots=2, queue_size=8)
    a, b, c = request(), request(), request()
    for r in (a, b, c):
        s.enqueue(r)
    assert s.admit(now=1.0) == [(0, a), (1, b)] and a.started == 1.0
    assert s.occupied() == [(0, a), (1, b)] and list(s.queue) == [c]
    assert s.advance(0, a, q_halt=-1.0, now=2.0) is None and a.steps == 1  # stays
    assert s.advance(1, b, q_halt=1.0, now=2.0) == Exit(True, None)  # leaves: slot 1 frees
    assert s.busy() == 1 and s.admit(now=3.0) == [(1, c)] and c.steps == 0
    assert s.pending() == 2


def test_static_batching_admits_only_into_an_empty_batch():
    s = Scheduler(slots=2, queue_size=8, batching="static")
    a, b, c = request(max_steps=1), request(max_steps=2), request()
    for r in (a, b, c):
        s.enqueue(r)
    s.admit(now=0.0)
    assert s.advance(0, a, 0.0, now=0.0) is not None
    assert s.admit(now=0.0) == []  # b still runs
    s.advance(1, b, -1.0, now=0.0)
    s.advance(1, b, -1.0, now=0.0)
    assert s.admit(now=0.0) == [(0, c)]


def test_queue_full_counts_free_slots_and_withdraw_frees_a_place():
    s = Scheduler(slots=1, queue_size=2)
    running, w1, w2 = request(), request(), request()
    s.enqueue(running)
    s.admit(now=0.0)
    s.enqueue(w1)
    s.enqueue(w2)
    with pytest.raises(QueueFullError):
        s.enqueue(request())
    assert s.withdraw(w2) and not s.withdraw(w2) and not s.withdraw(running)
    s.enqueue(request())


def test_admission_drops_cancelled_and_fails_expired_requests():
    s = Scheduler(slots=1, queue_size=8)
    cancelled, expired, live = request(), request(deadline=5.0), request(deadline=50.0)
    for r in (cancelled, expired, live):
        s.enqueue(r)
    cancelled.future.cancel()
    assert s.admit(now=10.0) == [(0, live)]
    with pytest.raises(DeadlineExceededError):
        expired.future.result(timeout=0)


def test_a_cancelled_or_dropped_request_frees_its_slot_without_an_exit():
    s = Scheduler(slots=2, queue_size=8)
    a, b = request(), request()
    s.enqueue(a)
    s.enqueue(b)
    s.admit(now=0.0)
    a.future.cancel()
    assert s.advance(0, a, q_halt=5.0, now=0.0) is None and not s.holds(0, a) and a.steps == 0
    assert s.drop_all() == [b] and s.pending() == 0
    assert s.advance(1, b, q_halt=5.0, now=0.0) is None  # stepped while it was dropped: nobody answers


def test_choose_slots_takes_the_smallest_batch_near_the_best_cost():
    # the Sudoku model on 2 CPU cores: 8 is within 15% of the best (4.8 ms)
    assert choose_slots({1: 12.0, 2: 8.0, 4: 6.0, 8: 5.0, 16: 4.8, 32: 4.8}) == 8
    assert choose_slots({1: 12.0, 2: 8.0, 4: 6.0, 8: 5.0, 16: 4.8, 32: 4.8}, tolerance=0.01) == 16
    assert choose_slots({1: 1.0, 2: 1.1}) == 1
    with pytest.raises(ValueError):
        choose_slots({})


def test_the_scheduler_needs_no_torch():
    import subprocess
    import sys

    code = "import sys, trm.scheduler; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
