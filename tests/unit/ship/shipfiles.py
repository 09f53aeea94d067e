"""Helpers for the shipping checks: they read the repository's files; nothing runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[3]


def cli_commands() -> set[tuple[str, ...]]:
    """Every runnable `facestream ...` command path, e.g. ("worker",), ("db", "migrate")."""
    from cli.main import main

    paths: set[tuple[str, ...]] = set()

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, (*prefix, name))
            else:
                paths.add((*prefix, name))

    walk(main, ())
    return paths


def is_cli_invocation(args: list[str]) -> bool:
    """`args` (after `facestream`) starts with a real command path and valid arguments."""
    from cli.main import main

    try:
        with main.make_context("facestream", list(args), resilient_parsing=False) as ctx:
            command: click.Command = main
            while isinstance(command, click.Group) and ctx.protected_args + ctx.args:
                name, cmd, rest = command.resolve_command(ctx, ctx.protected_args + ctx.args)
                assert cmd is not None
                ctx = cmd.make_context(name or "", rest, parent=ctx)
                command = cmd
            return not isinstance(command, click.Group)
    except (click.UsageError, click.exceptions.Exit, AssertionError):
        return False


def facestream_calls(shell: str) -> list[list[str]]:
    """The argument lists of every `facestream ...` in command position in a shell line."""
    calls: list[list[str]] = []
    for part in re.split(r"&&|\|\||;|\bthen\b|\bdo\b", shell):
        words = shlex.split(part.strip()) if part.strip() else []
        while words and re.fullmatch(r"\w+=\S*", words[0]):
            words = words[1:]  # VAR=value prefixes
        if words and words[0] == "facestream":
            rest: list[str] = []
            for word in words[1:]:
                if word in {"|", ">", "2>&1"} or word.startswith(">"):
                    break
                rest.append(word)
            calls.append(rest)
    return calls
