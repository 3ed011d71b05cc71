import numpy as np
import pytest

from agent_reasoning.types import SudokuProblem, SudokuSolution
from trm.data import split_of
from trm.tasks import InvalidProblem, get_task
from trm.tasks.common import LimitReached
from trm.tasks.sudoku import canonical_key, rate
from trm.tasks.sudoku_solver import count_solutions, solve

# Known puzzles with their unique solutions (a classic easy one and Arto Inkala's "hardest").
EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
EASY_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
INKALA = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."
INKALA_SOLUTION = "812753649943682175675491283154237896369845721287169534521974368438526917796318452"


@pytest.fixture(scope="module")
def task():
    return get_task("sudoku")


def solution_of(s: str) -> SudokuSolution:
    digits = [int(c) for c in s]
    return SudokuSolution(grid=[digits[9 * r : 9 * r + 9] for r in range(9)], solution=s)


def test_encoding_is_the_reference_builders(task):
    p = task.parse({"puzzle": EASY})
    tokens = task.encode(p)
    assert tokens.shape == (81,) and task.seq_len == 81 and task.vocab_size == 11
    assert tokens[0] == 5 + 1 and tokens[2] == 1  # digit d -> d + 1, blank -> 1
    grid = task.parse({"grid": [[int(c) if c != "." else 0 for c in EASY[9 * r : 9 * r + 9]] for r in range(9)]})
    assert np.array_equal(task.encode(grid), tokens)


def test_decode_round_trip_and_verify(task):
    p = task.parse({"puzzle": EASY})
    label = task.label(p)
    sol = task.decode(label, p)
    assert sol.solution == EASY_SOLUTION and task.verify(p, sol) == []
    assert "|" in task.render(p, sol)


def test_baseline_solves_known_puzzles(task):
    for puzzle, expected in ((EASY, EASY_SOLUTION), (INKALA, INKALA_SOLUTION)):
        p = task.parse({"puzzle": puzzle})
        assert task.baseline(p).solution == expected
        assert count_solutions([0 if c == "." else int(c) for c in puzzle]) == 1
    assert rate([0 if c == "." else int(c) for c in INKALA]) > rate([0 if c == "." else int(c) for c in EASY])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s[:80] + ("1" if s[80] != "1" else "2"), "more than once"),  # a row/column/box repeats
        (lambda s: "0" + s[1:], "not filled"),  # a blank left
        (lambda s: s[1] + s[0] + s[2:], "was changed"),  # swap two cells of row 1: givens change
    ],
)
def test_verify_catches_each_kind_of_wrong_answer(task, mutate, message):
    p = task.parse({"puzzle": EASY})
    bad = mutate(EASY_SOLUTION)
    violations = task.verify(p, solution_of(bad))
    assert violations and any(message in v for v in violations), violations


def test_verify_catches_a_valid_grid_that_ignores_the_givens(task):
    # a valid full grid, relabelled: every row/column/box is fine but the givens are not kept
    relabel = {str(d): str(d % 9 + 1) for d in range(1, 10)}
    other = "".join(relabel[c] for c in EASY_SOLUTION)
    p = task.parse({"puzzle": EASY})
    violations = task.verify(p, solution_of(other))
    assert violations and all("given" in v for v in violations)


@pytest.mark.parametrize(
    ("problem", "fragment"),
    [
        ({"puzzle": EASY[:80]}, "81 cells"),
        ({"puzzle": EASY[:80] + "x"}, "'x'"),
        ({"puzzle": "55" + EASY[2:]}, "contradictory"),
        ({"grid": [[0] * 9] * 8}, "9 rows"),
        ({"puzzle": EASY, "grid": [[0] * 9] * 9}, "exactly one"),
    ],
)
def test_invalid_problems_name_what_is_wrong(task, problem, fragment):
    with pytest.raises(InvalidProblem) as e:
        task.parse(problem)
    assert fragment in str(e.value) and e.value.field.startswith("problem")


def test_unsolvable_puzzle_is_an_invalid_problem(task):
    """No two givens clash, yet cell 9 can hold nothing: found when the model's answer fails."""
    p = task.parse({"puzzle": "12345678." + "........9" + "." * 63})
    with pytest.raises(InvalidProblem, match="no solution"):
        task.ensure_solvable(p)
    task.ensure_solvable(task.parse({"puzzle": EASY}))


@pytest.mark.parametrize("bucket", ["easy", "medium", "hard"])
def test_generated_puzzles_are_unique_and_in_their_bucket(task, bucket):
    examples = task.generate(np.random.default_rng(7), 4, bucket)
    lo, hi = {"easy": (36, 45), "medium": (28, 35), "hard": (17, 25)}[bucket]
    for ex in examples:
        cells = ex.problem.cells()
        assert count_solutions(cells) == 1
        assert lo <= 81 - cells.count(0) <= hi
        assert task.verify(ex.problem, task.decode(ex.labels, ex.problem)) == []
        if bucket == "hard":
            assert ex.info["guesses"] >= 20


def test_augmentations_keep_validity_and_the_canonical_key(task):
    examples = task.generate(np.random.default_rng(3), 16, "medium")
    inputs = np.stack([e.inputs for e in examples])
    labels = np.stack([e.labels for e in examples])
    aug_in, aug_lab = task.augment(np.random.default_rng(4), inputs, labels)
    assert not np.array_equal(aug_in, inputs)
    for i, e in enumerate(examples):
        p = SudokuProblem(puzzle="".join(str(t - 1) if t > 1 else "." for t in aug_in[i]))
        assert task.verify(p, task.decode(aug_lab[i], p)) == []
        assert canonical_key([int(t) - 1 for t in aug_lab[i]]) == e.group


def test_split_is_leak_free(task):
    """Every symmetric image of a puzzle lands in the same split as the puzzle."""
    examples = task.generate(np.random.default_rng(11), 30, "easy")
    rng = np.random.default_rng(12)
    for e in examples:
        inputs, labels = task.augment(rng, np.tile(e.inputs, (8, 1)), np.tile(e.labels, (8, 1)))
        for lab in labels:
            key = canonical_key([int(t) - 1 for t in lab])
            assert key == e.group and split_of(key) == split_of(e.group)


def test_built_splits_share_no_canonical_form(tmp_path):
    from trm.data import TokenDataset, generate_splits, write_split

    task = get_task("sudoku")
    examples = generate_splits(task, {"train": {"easy": 60}, "test": {"easy": 6}}, seed=5)
    for split, ex in examples.items():
        write_split(task, ex, tmp_path / split, split, {})
    train = {canonical_key([int(t) - 1 for t in row]) for row in TokenDataset(tmp_path / "train").take(range(60)).labels}
    test = {canonical_key([int(t) - 1 for t in row]) for row in TokenDataset(tmp_path / "test").take(range(6)).labels}
    assert not train & test and len(test) == 6
    assert all(split_of(k) == "test" for k in test) and all(split_of(k) == "train" for k in train)


def test_solver_counts_guesses_and_finds_no_solution():
    assert solve([1, 1] + [0] * 79).solutions == []
    r = solve([0] * 81, limit=1)
    assert len(r.solutions) == 1 and sorted(r.solutions[0][:9]) == list(range(1, 10))


def test_views_are_fixed_symmetries_that_keep_validity_and_undo(task):
    views = task.views(16)
    assert len(views) == 16
    assert np.array_equal(views[0].positions, np.arange(81)) and np.array_equal(views[0].values, np.arange(11))
    again = task.views(16)
    assert all(np.array_equal(a.positions, b.positions) and np.array_equal(a.values, b.values) for a, b in zip(views, again))
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(task.views(4), views))  # a prefix: same first views
    e = task.generate(np.random.default_rng(9), 1, "medium")[0]
    for v in views[1:]:
        x, y = v.apply(e.inputs), v.apply(e.labels)
        assert not np.array_equal(x, e.inputs)
        p = SudokuProblem(puzzle="".join(str(t - 1) if t > 1 else "." for t in x))
        assert task.verify(p, task.decode(y, p)) == []
        assert canonical_key([int(t) - 1 for t in y]) == e.group
        assert np.array_equal(v.undo(y), e.labels) and np.array_equal(v.undo(x), e.inputs)


def two_solution_puzzle() -> tuple[str, set[str]]:
    """EASY_SOLUTION with an unavoidable rectangle blanked (two rows in different bands, two columns
    in one stack, digits a b / b a): exactly two solutions, returned with the puzzle."""
    grid = [int(c) for c in EASY_SOLUTION]
    for r1 in range(9):
        for r2 in range(r1 + 1, 9):
            if r1 // 3 == r2 // 3:
                continue
            for c1 in range(9):
                for c2 in range(c1 + 1, 9):
                    if c1 // 3 != c2 // 3:
                        continue
                    a, b = grid[9 * r1 + c1], grid[9 * r1 + c2]
                    if grid[9 * r2 + c1] == b and grid[9 * r2 + c2] == a:
                        cells, other = list(grid), list(grid)
                        for i in (9 * r1 + c1, 9 * r1 + c2, 9 * r2 + c1, 9 * r2 + c2):
                            cells[i] = 0
                        for i, j in ((9 * r1 + c1, 9 * r1 + c2), (9 * r2 + c1, 9 * r2 + c2)):
                            other[i], other[j] = other[j], other[i]
                        puzzle = "".join(str(v) if v else "." for v in cells)
                        return puzzle, {EASY_SOLUTION, "".join(map(str, other))}
    raise AssertionError("EASY_SOLUTION has no unavoidable rectangle")


def test_solve_is_exact_and_says_whether_the_solution_is_unique(task):
    answer = task.solve(task.parse({"puzzle": INKALA}))
    assert answer.solved_by == "solver" and answer.solution.solution == INKALA_SOLUTION
    assert answer.unique is True and task.verify(task.parse({"puzzle": INKALA}), answer.solution) == []
    puzzle, solutions = two_solution_puzzle()
    assert count_solutions([0 if c == "." else int(c) for c in puzzle], limit=3) == 2
    p = task.parse({"puzzle": puzzle})
    answer = task.solve(p)
    assert answer.solution.solution in solutions and answer.unique is False
    for s in solutions:
        assert task.verify(p, solution_of(s)) == [] and task.unique(p, solution_of(s)) is False
    assert task.unique(task.parse({"puzzle": EASY}), solution_of(EASY_SOLUTION)) is True


def test_solve_refuses_an_unsolvable_puzzle_and_a_search_cut_short_says_unknown(task):
    # consistent givens, yet no solution: row 1 leaves its last cell only a 9, which column 9 already holds
    with pytest.raises(InvalidProblem, match="no solution"):
        task.solve(task.parse({"puzzle": "12345678." + "........9" + "." * 63}))
    assert task.unique(task.parse({"puzzle": "." * 81}), None) is False  # two solutions found at once
    cut = solve([0 if c == "." else int(c) for c in INKALA], limit=2, max_nodes=5)
    assert not cut.complete and cut.solutions == []
    with pytest.raises(LimitReached, match="ran out of time"):
        task.solve(task.parse({"puzzle": INKALA}), time_limit_s=-1.0)


def boxed(puzzle: str) -> str:
    lines = []
    for r in range(9):
        if r and r % 3 == 0:
            lines.append("------+-------+------")
        row = puzzle[9 * r : 9 * r + 9]
        lines.append(" | ".join(" ".join(row[3 * k : 3 * k + 3]) for k in range(3)))
    return "\n".join(lines)


@pytest.mark.parametrize(
    "layout",
    [
        lambda p: p,  # 81 characters, '.' for blanks
        lambda p: p.replace(".", "0"),  # '0' for blanks
        lambda p: "\n".join(p[9 * r : 9 * r + 9] for r in range(9)),  # 9 lines of 9
        lambda p: " ".join(p.replace(".", "0")),  # separated by spaces
        lambda p: ",".join(p.replace(".", "0")),  # separated by commas
        lambda p: "\n".join(", ".join(p[9 * r : 9 * r + 9]) for r in range(9)) + "\n",  # CSV rows
        boxed,  # the service's own rendering
    ],
)
def test_puzzle_text_layouts_are_accepted(task, layout):
    assert task.parse({"puzzle": layout(EASY)}).puzzle == EASY


def test_the_rendered_answer_goes_back_in_as_a_puzzle(task):
    p = task.parse({"puzzle": EASY})
    answer = task.render(p, task.baseline(p))
    assert task.parse({"puzzle": answer}).puzzle == EASY_SOLUTION


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("\n".join(EASY[9 * r : 9 * r + 9] for r in range(9))[:-1], "got 80 in 9 rows (row 9 has 8; each needs 9)"),
        (EASY[:40] + "x" + EASY[41:], "cell 40 (row 5, column 5) is 'x'"),
        (EASY + "5", "need 81, got 82"),
        (boxed(EASY).replace("|", "/", 1), "is '/'"),
        ("\n".join([EASY[:9]] * 10), "got 90 in 10 rows; need 9 rows of 9"),
    ],
)
def test_puzzle_text_errors_say_what_is_wrong(task, text, fragment):
    with pytest.raises(InvalidProblem) as e:
        task.parse({"puzzle": text})
    assert e.value.field == "problem.puzzle" and fragment in str(e.value), str(e.value)
