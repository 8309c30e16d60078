"""Command-line options generated from a stage's config dataclass: one declaration per option.

Every stage declares its options once, as fields of its frozen config dataclass (`imagenot.config.option`:
default, help, flag name, group, path-ness). This module turns those fields into argparse flags, shows the
default in each flag's help, adds `--config FILE` (and `--preset` where a stage has presets) and the global
options, and turns parsed flags back into a config with the layering of `imagenot.config.resolve`
(defaults < preset < config file < flags). A flag the user did not give is absent from the parse
(argparse.SUPPRESS), so a config file's value is never overwritten by a flag's default.

Type -> flag: `bool` gives `--name / --no-name`; a `Literal[...]` gives choices; `tuple[...]` takes
comma-separated values; `dict[...]` takes repeatable `KEY=VALUE` pairs (values read as YAML scalars) merged
over the config file's mapping; `int`, `float`, `str` (optional or not) their type.

This module imports only the standard library and imagenot.config, so `imagenot --help` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from imagenot.config import ConfigError, absolute_paths, resolve

log = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "warning", "error")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and examples' line breaks; wider option column."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=min(110, max(80, _terminal_width())))


# Options renamed since they were published, per command: an old flag is an error naming its successor
# (with abbreviations allowed, `finetune --checkpoint DIR` was silently read as `--checkpoint-every DIR`).
RENAMED: dict[str, dict[str, str]] = {
    "finetune": {"--checkpoint": "--init run:DIR", "--mode": "--finetune-mode"},
    "zoo": {"--plan": "--config PLAN"},
}


class Parser(argparse.ArgumentParser):
    """Every imagenot parser: no abbreviated long options (a prefix of one flag must never be read as
    another, above all after a rename), and a renamed flag (RENAMED) is an error naming its successor.

    `add_subparsers` makes its subparsers of the parser's own class, so the subcommands inherit both."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        renamed = RENAMED.get(self.prog.split()[-1], {})
        for token in (args if args is not None else sys.argv[1:]):
            if token == "--":
                break
            flag = str(token).split("=", 1)[0]
            if flag in renamed and flag not in self._option_string_actions:
                self.error(f"{flag} was renamed: use {renamed[flag]}")
        return super().parse_known_args(args, namespace)


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def wrap_paragraphs(text: str, width: int = 100) -> str:
    """Fill each blank-line separated paragraph (descriptions are written as one long string)."""
    import textwrap

    return "\n\n".join(textwrap.fill(" ".join(par.split()), width) for par in text.split("\n\n") if par.strip())


def global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """--log-level, -v, --quiet, --no-progress: accepted before the subcommand and after it.

    The subcommand's copies default to SUPPRESS so that `imagenot -q train ...` is not undone by the
    subcommand parser's defaults.
    """
    default = argparse.SUPPRESS if suppress else None
    taken = parser._option_string_actions
    g = parser.add_argument_group("global options")
    specs: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("--log-level",), {"choices": LOG_LEVELS, "default": default,
                            "help": "logging threshold (default: info; warning with --quiet)"}),
        (("-v", "--verbose"), {"action": "count", "default": argparse.SUPPRESS if suppress else 0,
                               "help": "more logging (-v: debug)"}),
        (("-q", "--quiet"), {"action": "store_true", "default": argparse.SUPPRESS if suppress else False,
                             "help": "only warnings and errors, no progress bars"}),
        (("--no-progress",), {"dest": "no_progress", "action": "store_true",
                              "default": argparse.SUPPRESS if suppress else False,
                              "help": "no progress bars or progress lines (logs stay)"}),
    ]
    for flags, kwargs in specs:
        if not any(f in taken for f in flags):
            g.add_argument(*flags, **kwargs)


def _unwrap_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _format_default(value: Any) -> str:
    if value == "":
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) if value else "none"
    return str(value)


def field_help(f: dataclasses.Field) -> str:
    """The field's help with its default, unless the help already says what the default is."""
    text = f.metadata.get("help", "")
    if "default" in text.lower():
        return text.replace("%", "%%")
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = f.default_factory()  # type: ignore[misc]
    else:
        return text.replace("%", "%%")
    if default is None:
        return text.replace("%", "%%")
    return f"{text} (default: {_format_default(default)})".replace("%", "%%")


class _KeyValue(argparse.Action):
    """Repeatable KEY=VALUE pairs collected into a dict (values as YAML scalars: 3 -> int, true -> bool)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any,
                 option_string: str | None = None) -> None:
        import yaml

        key, sep, raw = str(value).partition("=")
        if not sep or not key.strip():
            parser.error(f"{option_string} expects KEY=VALUE, got {value!r}")
        current = dict(getattr(namespace, self.dest, None) or {})
        try:
            current[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            current[key.strip()] = raw
        setattr(namespace, self.dest, current)


def _add_field(parser: argparse._ActionsContainer, f: dataclasses.Field, tp: Any) -> None:
    flag = flag_name(f)
    kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": field_help(f)}
    if f.metadata.get("metavar"):
        kwargs["metavar"] = f.metadata["metavar"]
    base = _unwrap_optional(tp)
    origin = typing.get_origin(base)
    if base is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        return
    if origin is typing.Literal:
        choices = typing.get_args(base)
        aliases = dict(f.metadata.get("aliases") or {})
        # a value an earlier version accepted (e.g. --precision float16) still works: argparse checks the choice
        # after the type conversion, which maps it to today's name
        convert = type(choices[0])
        kwargs.update(choices=choices, type=(lambda v: aliases.get(v, convert(v))) if aliases else convert)
    elif origin in (tuple, list):
        if f.metadata.get("nargs"):
            kwargs["nargs"] = f.metadata["nargs"]
        elif f.metadata.get("repeat"):
            kwargs["action"] = "append"
        else:
            kwargs.setdefault("metavar", "A,B,...")
    elif origin in (dict, Mapping) or base is dict:
        kwargs.update(action=_KeyValue)
        kwargs.setdefault("metavar", "KEY=VALUE")
    elif base in (int, float, str):
        kwargs["type"] = base
        if base is not str:
            kwargs.setdefault("metavar", "N" if base is int else "X")
    parser.add_argument(flag, **kwargs)


def config_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, *, exclude: Sequence[str] = ()) -> None:
    """One flag per CLI field of `cls`, in option groups named by the fields' `group` metadata."""
    groups: dict[str | None, argparse._ActionsContainer] = {}
    for f, tp in config_fields(cls):
        if f.name in exclude:
            continue
        group = f.metadata.get("group")
        if group not in groups:
            groups[group] = parser.add_argument_group(group) if group else parser
        _add_field(groups[group], f, tp)


def add_stage_parser(
    subparsers: argparse._SubParsersAction,
    name: str,
    cls: type,
    *,
    help: str,
    description: str,
    examples: Sequence[str],
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    exclude: Sequence[str] = (),
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.ArgumentParser:
    """A subcommand whose flags are `cls`'s fields, with --config, --preset, examples and global options."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None
    p = subparsers.add_parser(name, help=help, description=wrap_paragraphs(description), epilog=epilog,
                              formatter_class=HelpFormatter, allow_abbrev=False)
    add_config_arguments(p, cls, exclude=exclude)
    if extra is not None:
        extra(p)
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="start from this config.json/yaml (e.g. a run's own config.json); flags override it")
    if presets:
        p.add_argument("--preset", choices=sorted(presets), default=argparse.SUPPRESS,
                       help="named settings to start from (flags and --config override them)")
    global_options(p, suppress=True)
    p.set_defaults(_config_cls=cls)
    return p


def overrides_from_args(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user gave on the command line (absent flags are not in the namespace)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def config_from_args(
    cls: type,
    args: argparse.Namespace,
    *,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    preset: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> Any:
    """The resolved config: defaults < preset < --config file < flags < `changes` (set by the command).

    Dict fields merge: the flags' KEY=VALUE pairs go on top of the config file's mapping rather than
    replacing it. Paths (fields with `path` metadata) become absolute: the config file's relative to the
    file's folder, the flags' relative to the working directory, so a written config.json replays anywhere.
    """
    config_file = getattr(args, "config", None)
    chosen = getattr(args, "preset", None) or preset
    overrides = {**overrides_from_args(cls, args), **(changes or {})}
    overrides = absolute_paths(cls, overrides, base=Path.cwd())
    cfg = resolve(cls, presets=presets, preset=chosen, config_file=config_file or None, overrides=overrides,
                  keep_none=True)
    # defaults and presets name paths relative to where the command runs: make those absolute as well
    current = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls) if f.metadata.get("path")}
    fixed = absolute_paths(cls, current)
    return dataclasses.replace(cfg, **fixed) if fixed != current else cfg


def config_argv(cfg: Any, *, skip: Sequence[str] = ()) -> list[str]:
    """The flags that rebuild `cfg` on the command line: every CLI field that differs from its default.

    Used to print cluster commands (torchrun lines, Slurm arrays) that run exactly the configured run.
    """
    import json

    argv: list[str] = []
    for f, tp in config_fields(type(cfg)):
        if f.name in skip:
            continue
        value = getattr(cfg, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = dataclasses.MISSING
        if value == default:
            continue
        flag = flag_name(f)
        base = _unwrap_optional(tp)
        if base is bool:
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is None:
            raise ConfigError(f"{f.name}: cannot express None on the command line (its default is {default!r})")
        elif isinstance(value, dict):
            for key, item in value.items():
                argv += [flag, f"{key}={item if isinstance(item, str) else json.dumps(item)}"]
        elif isinstance(value, tuple | list):
            if f.metadata.get("nargs"):
                argv += [flag, *[str(v) for v in value]]
            elif f.metadata.get("repeat"):
                for v in value:
                    argv += [flag, str(v)]
            else:
                argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv
