import numpy as np

from trm.inference import Prediction, StepRecord
from trm.pipeline import AnswerOptions, finish
from trm.tasks import get_task
from trm.tasks.upgrade import SIZE, VOCAB, WAVE0


def test_the_last_trace_step_is_the_answer_decoded_with_its_probabilities():
    # a and b share "db", b and c share "web"; the model is sure of b (wave 1) and c (wave 2), not of a
    task = get_task("upgrade")
    services = [{"name": "db", "replicas_on": ["a", "b"], "max_unavailable": 1}, {"name": "web", "replicas_on": ["b", "c"], "max_unavailable": 1}]
    problem = task.parse({"nodes": ["a", "b", "c"], "services": services})
    probs = np.zeros((SIZE, SIZE, VOCAB), dtype=np.float32)
    probs[0, 1, WAVE0 : WAVE0 + 2] = [0.5, 0.4]
    probs[0, 2, WAVE0] = 0.9
    probs[0, 3, WAVE0 + 1] = 0.9
    probs = probs.reshape(SIZE * SIZE, VOCAB)
    tokens = probs.argmax(-1)
    trace = [StepRecord(1, tokens.copy(), 0.2, SIZE * SIZE), StepRecord(2, tokens, 0.9, 0)]
    answer = finish(task, problem, Prediction(tokens, 2, True, 0.9, 2.0, trace, probs), AnswerOptions(fallback=False))
    assert answer.solution["waves"] == [["a", "c"], ["b"]]  # the confidence order's two waves
    assert answer.trace[-1]["solution"] == answer.solution
    assert answer.trace[0]["solution"]["waves"] == [["a"], ["b"], ["c"]]  # an earlier step: from its tokens alone (no probabilities kept)
