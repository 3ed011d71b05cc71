"""The homelab tasks are registered, describe themselves, and their examples parse."""

import numpy as np
import pytest

from trm.tasks import InvalidProblem, get_task, list_tasks

HOMELAB = ("placement", "rootcause", "upgrade")


@pytest.mark.parametrize("name", HOMELAB)
def test_registry_finds_the_task(name):
    assert name in list_tasks()
    task = get_task(name)
    info = task.describe()
    assert info["name"] == name and info["seq_len"] == task.seq_len and info["vocab_size"] == task.vocab_size
    assert info["exact_check"] == (name != "rootcause")
    assert info["max_views"] == (8 if name == "upgrade" else 1)  # node orders; the others have no symmetries


@pytest.mark.parametrize("name", HOMELAB)
def test_example_parses_encodes_and_renders(name):
    task = get_task(name)
    problem = task.parse(task.example())
    tokens = task.encode(problem)
    assert tokens.shape == (task.seq_len,) and tokens.min() >= 0 and tokens.max() < task.vocab_size
    answer = task.baseline(problem)
    assert task.verify(problem, answer) in ([], None)
    assert task.render(problem, answer)


@pytest.mark.parametrize("name", HOMELAB)
def test_tasks_take_no_options(name):
    with pytest.raises(TypeError):
        get_task(name, size=3)


@pytest.mark.parametrize("name", HOMELAB)
def test_schema_errors_name_the_field(name):
    with pytest.raises(InvalidProblem) as e:
        get_task(name).parse({"nodes": "not a list", "services": 3, "pods": None})
    assert e.value.field.startswith("problem.")


@pytest.mark.parametrize(
    ("name", "raw", "field", "hint"),
    [
        ("upgrade", {"nodes": ["a"], "services": [{"name": "s", "replicas_on": ["a"], "maxUnavailable": 1}]}, "problem.services.0.max_unavailable", "'maxUnavailable'"),
        ("placement", {"nodes": [{"name": "a", "cpu-millicores": 1, "memory_mib": 1}], "pods": []}, "problem.nodes.0.cpu_millicores", "'cpu-millicores'"),
        ("placement", {"node": [], "pods": []}, "problem.nodes", "'node'"),
        ("placement", {"nodes": [{"name": "a", "cpu": 1, "memory_mib": 1}], "pods": []}, "problem.nodes.0.cpu_millicores", None),
    ],
)
def test_a_missing_field_names_the_key_sent_in_its_place(name, raw, field, hint):
    with pytest.raises(InvalidProblem) as e:
        get_task(name).parse(raw)
    assert e.value.field == field
    assert ("did you mean" in str(e.value)) == (hint is not None)
    if hint:
        assert f"the object has {hint}: did you mean" in str(e.value), str(e.value)


@pytest.mark.parametrize("name", HOMELAB)
def test_labels_fit_the_vocabulary(name):
    task = get_task(name)
    for ex in task.generate(np.random.default_rng(0), 3, task.buckets[0]):
        assert ex.inputs.shape == ex.labels.shape == (task.seq_len,)
        assert 0 <= ex.labels.min() and ex.labels.max() < task.vocab_size and ex.inputs.max() < task.vocab_size
        assert (ex.labels > 0).any()
