"""trm.inference.vote: the answer most symmetric views agree on, mapped back to the problem."""

import numpy as np
import pytest

from trm.inference import Prediction, StepRecord, majority, vote
from trm.tasks.base import View

REVERSE = View(np.arange(4)[::-1].copy(), np.array([0, 2, 1]))  # reverse the positions, swap tokens 1 and 2
IDENTITY = View.identity(4, 3)


def prediction(tokens, confidence, steps=1, trace=()):
    return Prediction(np.array(tokens), steps, True, confidence, 0.0, list(trace))


def test_undo_inverts_apply():
    x = np.array([0, 1, 2, 2])
    assert np.array_equal(REVERSE.apply(x), [1, 1, 2, 0])
    assert np.array_equal(REVERSE.undo(REVERSE.apply(x)), x)


def test_the_majority_wins_after_mapping_back_and_reports_the_votes():
    answer = np.array([1, 1, 2, 0])
    predictions = [
        prediction(answer, 0.6, steps=2),
        prediction(REVERSE.apply(answer), 0.7, steps=5),  # the same answer, seen reversed
        prediction([2, 2, 2, 2], 0.99, steps=1),  # a confident outlier
    ]
    result = vote([IDENTITY, REVERSE, IDENTITY], predictions)
    assert np.array_equal(result.tokens, answer)
    assert (result.views, result.votes) == (3, 2)
    assert result.confidence == 0.7 and result.steps == 5  # the winning group's most confident view


def test_a_tie_goes_to_the_larger_summed_confidence():
    a, b = [1, 1, 1, 1], [2, 2, 2, 2]
    result = vote([IDENTITY] * 4, [prediction(a, 0.5), prediction(b, 0.9), prediction(a, 0.6), prediction(b, 0.8)])
    assert np.array_equal(result.tokens, b) and result.votes == 2


def test_the_trace_of_the_chosen_view_is_mapped_back():
    answer = np.array([1, 2, 0, 0])
    seen = REVERSE.apply(answer)
    trace = [StepRecord(1, seen, 0.9, 4)]
    result = vote([REVERSE], [prediction(seen, 0.9, trace=trace)])
    assert np.array_equal(result.tokens, answer) and np.array_equal(result.trace[0].tokens, answer)


def test_majority_groups_equal_answers_and_breaks_ties_by_summed_confidence():
    a, b = np.array([1, 2]), np.array([2, 1])
    # the vote in testtime.select and trm.inference.vote both rest on it
    assert majority([a, b, a.copy(), b.copy(), b[::-1][::-1]], [0.1, 0.1, 0.1, 0.1, 0.1]) == [1, 3, 4]
    assert majority([a, b], [0.4, 0.6]) == [1]
    assert majority([a, b], [0.6, 0.4]) == [0]
    assert majority([a, b], [0.5, 0.5]) == [0]  # a full tie: the first group seen
    with pytest.raises(ValueError):
        majority([], [])
