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

# (module, group name): each module defines ``app``, a typer.Typer. Several modules may
# contribute commands to one group (e.g. ``duis send`` and ``duis transform``); a group of
# None puts the module's commands at the top level.
_GROUPS = [
    ("smarthydra.cli.gbcs", "gbcs"),
    ("smarthydra.cli.card", "card"),
    ("smarthydra.cli.keys", "keys"),
    ("smarthydra.cli.dcc", "dcc"),
    ("smarthydra.cli.duis", "duis"),
    ("smarthydra.cli.duis_transform", "duis"),
    ("smarthydra.cli.smki", "smki"),
    ("smarthydra.cli.home", "home"),
    ("smarthydra.cli.sts", "sts"),
    ("smarthydra.cli.utrn", "utrn"),
    ("smarthydra.cli.demo", None),
]

_group_apps: dict[str, typer.Typer] = {}
for _module_name, _group in _GROUPS:
    try:
        _module = importlib.import_module(_module_name)
    except ModuleNotFoundError as exc:  # a group whose module is not written yet
        if exc.name != _module_name:
            raise
        continue
    if _group is None:
        app.registered_commands.extend(_module.app.registered_commands)
    elif _group in _group_apps:
        _group_apps[_group].registered_commands.extend(_module.app.registered_commands)
        _group_apps[_group].registered_groups.extend(_module.app.registered_groups)
    else:
        _group_apps[_group] = _module.app
        app.add_typer(_module.app, name=_group)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
