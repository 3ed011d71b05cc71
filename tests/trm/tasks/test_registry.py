"""A task from an installed package's `trm.tasks` entry point is found without forking."""

import sys
import textwrap

from trm.tasks import get_task, list_tasks, task_classes


def test_builtin_tasks():
    assert {"sudoku", "maze", "toy_reverse"} <= set(list_tasks())
    assert get_task("maze", size=11).seq_len == 121


def test_entry_point_task_is_discovered(tmp_path, monkeypatch):
    pkg = tmp_path / "my_tasks"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            '''
            from trm.tasks.toy import ReverseTask

            class PalindromeTask(ReverseTask):
                name = "palindrome"
                description = "a plug-in task"
            '''
        )
    )
    dist = tmp_path / "my_tasks-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-tasks\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[trm.tasks]\npalindrome = my_tasks:PalindromeTask\nbroken = my_tasks:Missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    task_classes.cache_clear()
    try:
        assert "palindrome" in list_tasks()
        assert get_task("palindrome").description == "a plug-in task"
        assert "broken" not in list_tasks()  # a broken plug-in is skipped, not fatal
    finally:
        task_classes.cache_clear()
        sys.modules.pop("my_tasks", None)
