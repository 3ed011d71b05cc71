import numpy as np
import pytest

from agent_reasoning.types import MazeSolution
from trm.tasks import InvalidProblem, get_task
from trm.tasks.maze import PATH, bfs, find

MAZE = ["#######", "#S  # #", "# # # #", "# #   #", "# ### #", "#    G#", "#######"]


@pytest.fixture(scope="module")
def task():
    return get_task("maze", size=9)


def test_encoding_is_the_reference_builders(task):
    tokens = task.encode(task.parse({"grid": MAZE})).reshape(9, 9)
    assert task.vocab_size == 6 and task.seq_len == 81
    assert tokens[0, 0] == 1 and tokens[1, 1] == 3 and tokens[1, 2] == 2 and tokens[5, 5] == 4
    assert (tokens[7:, :] == 1).all() and (tokens[:, 7:] == 1).all()  # padding is wall


def test_label_draws_the_shortest_path_and_decodes_back(task):
    p = task.parse({"grid": MAZE})
    label = task.label(p)
    assert (label == PATH).sum() == len(task.baseline(p).path) - 2
    sol = task.decode(label, p)
    assert task.verify(p, sol) == [] and sol.path[0] == (1, 1) and sol.path[-1] == (5, 5)
    assert "o" in task.render(p, sol)


def test_verify_catches_each_kind_of_wrong_answer(task):
    p = task.parse({"grid": MAZE})
    good = task.baseline(p).path
    cases = {
        "starts at": good[1:],
        "ends at": good[:-1],
        "wall": good[:2] + [(0, 1)] + good[2:],
        "jumps": good[:2] + good[3:],
        "twice": good[:3] + [good[1]] + good[1:],
    }
    for fragment, path in cases.items():
        violations = task.verify(p, MazeSolution(path=path, grid=[]))
        assert violations and any(fragment in v for v in violations), (fragment, violations)
    # MAZE has two shortest paths: either is right
    other = [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 4), (3, 5), (4, 5), (5, 5)]
    assert task.verify(p, MazeSolution(path=other, grid=[])) == []
    # a valid walk that is not shortest
    room = task.parse({"grid": ["#####", "#S  #", "#   #", "#  G#", "#####"]})
    detour = [(1, 1), (2, 1), (2, 2), (1, 2), (1, 3), (2, 3), (3, 3)]
    assert task.verify(room, MazeSolution(path=detour, grid=[])) == ["the path takes 6 moves; the shortest takes 4"]


@pytest.mark.parametrize(
    ("grid", "fragment"),
    [
        (["#S#", "#S#", "#G#"], "exactly one 'S'"),
        (["#S#", "###", "#G#"], "cannot be reached"),
        (["#S#", "#x#", "#G#"], "'x'"),
        (["#S#", "#", "#G#"], "as long"),
        (["S" + " " * 10 + "G"], "at most 9x9"),
    ],
)
def test_invalid_mazes_name_what_is_wrong(task, grid, fragment):
    with pytest.raises(InvalidProblem) as e:
        task.parse({"grid": grid})
    assert fragment in str(e.value) and e.value.field == "problem.grid"


def test_generated_mazes_have_long_unique_shortest_paths():
    task = get_task("maze", size=15)
    for e in task.generate(np.random.default_rng(0), 20, "full"):
        grid = e.problem.grid
        start, goal = find(grid, "S"), find(grid, "G")
        dist, _, count = bfs(grid, start)
        assert count[goal] == 1 and dist[goal] >= 15 == e.info["size"]
        assert task.verify(e.problem, task.decode(e.labels, e.problem)) == []


def test_dihedral_augmentation_keeps_validity():
    task = get_task("maze", size=15)
    examples = task.generate(np.random.default_rng(1), 8, "small")
    inputs, labels = np.stack([e.inputs for e in examples]), np.stack([e.labels for e in examples])
    aug_in, aug_lab = task.augment(np.random.default_rng(2), inputs, labels)
    chars = "?# SGo"
    for i in range(len(examples)):
        grid = ["".join(chars[t] for t in row) for row in aug_in[i].reshape(15, 15)]
        p = task.parse({"grid": grid})
        assert task.verify(p, task.decode(aug_lab[i], p)) == []
        assert (aug_lab[i] == PATH).sum() == (labels[i] == PATH).sum()


def test_views_are_the_8_dihedral_images_and_undo_restores_the_answer():
    task = get_task("maze", size=15)
    views = task.views(100)
    assert len(views) == 8 and len(task.views(3)) == 3
    assert np.array_equal(views[0].positions, np.arange(225))  # the identity first
    examples = task.generate(np.random.default_rng(5), 4, "full")
    chars = "?# SGo"
    for e in examples:
        images = {v.apply(e.inputs).tobytes() for v in views}
        assert len(images) == 8  # eight different problems (a maze is never symmetric here)
        for v in views:
            grid = ["".join(chars[t] for t in row) for row in v.apply(e.inputs).reshape(15, 15)]
            p = task.parse({"grid": grid})
            assert task.verify(p, task.decode(v.apply(e.labels), p)) == []  # the view's answer solves the view
            assert np.array_equal(v.undo(v.apply(e.labels)), e.labels)


def test_maze_describes_its_eight_views():
    assert get_task("maze", size=15).describe()["max_views"] == 8
