"""The CLI imports only the module of the command it runs (cli/main.py): fast to start, same commands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from originlock.cli.main import COMMANDS, build_parser


def _subcommands(parser: object) -> dict[str, str]:
    action = next(a for a in parser._actions if a.dest == "command")  # type: ignore[attr-defined]
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_the_lazy_table_lists_every_command_with_its_own_help() -> None:
    assert _subcommands(build_parser()) == {name: help_text for name, (_, _, help_text) in COMMANDS.items()}
    assert _subcommands(build_parser(["zones", "list"])) == _subcommands(build_parser())


def _modules_after(args: list[str]) -> set[str]:
    script = (
        "import sys\nfrom originlock.cli.main import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    return set(done.stderr.split())


@pytest.mark.parametrize("args", [["--help"], ["zones", "list", "--help"], ["certs", "list", "--help"]])
def test_help_and_client_commands_start_without_the_server(args: list[str]) -> None:
    loaded = _modules_after(args)
    assert "originlock.cli.main" in loaded
    assert not loaded & {"fastapi", "sqlalchemy", "uvicorn", "originlock.api.app", "originlock.edge.server"}


def test_an_edge_node_starts_without_the_api() -> None:
    loaded = _modules_after(["edge", "--help"])
    assert "originlock.cli.roles" in loaded
    assert "originlock.api.app" not in loaded and "originlock.dashboard" not in loaded


def test_a_mistyped_command_still_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(["zoens"]).parse_args(["zoens"])
    assert "invalid choice: 'zoens'" in capsys.readouterr().err
