"""The ``smarthydra`` command line.

Each domain contributes a sub-command group from its own module in this package
(``cli/gbcs.py``, ``cli/card.py``, ...); this module only assembles them.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="smarthydra: an open GB smart-metering system with a Project Hydra hub",
)

# (module, group name): each module defines ``app``, a typer.Typer.
_GROUPS = [
    ("smarthydra.cli.gbcs", "gbcs"),
    ("smarthydra.cli.card", "card"),
    ("smarthydra.cli.keys", "keys"),
    ("smarthydra.cli.dcc", "dcc"),
    ("smarthydra.cli.demo", None),
]

for _module_name, _group in _GROUPS:
    try:
        _module = importlib.import_module(_module_name)
    except ModuleNotFoundError as exc:  # a group whose module is not written yet
        if exc.name != _module_name:
            raise
        continue
    if _group is None:
        for _command in _module.app.registered_commands:
            app.registered_commands.append(_command)
    else:
        app.add_typer(_module.app, name=_group)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
