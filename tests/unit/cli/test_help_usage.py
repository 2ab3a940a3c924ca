"""``annotator COMMAND --help`` starts with that command's own usage line."""

from __future__ import annotations

import pytest

from annotator.cli import main


@pytest.mark.parametrize("command", ["import", "export", "eval", "train", "propose", "memory"])
def test_command_help_names_the_command_in_its_usage(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"usage: annotator {command} [-h]")
