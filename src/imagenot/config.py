"""Frozen dataclass configs shared by every stage.

Each stage has one config dataclass. Configs are built from presets, files (json or yaml) and CLI flags,
reject unknown keys, and are written resolved next to every output, so a run can be repeated from its own
`config.json` (`--config run/config.json`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from imagenot.errors import ImagenotError
from imagenot.spec import Spec

T = TypeVar("T")


class ConfigError(ImagenotError):
    """A config with unknown keys or values of the wrong type."""


def _coerce(tp: Any, value: Any, name: str) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(str(a) for a in args)}")
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(non_none[0], value, name)
        return value
    if origin in (tuple,):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if args and args[-1] is Ellipsis:
            return tuple(_coerce(args[0], v, name) for v in value)
        return tuple(value)
    if origin in (dict, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return from_dict(tp, value)
    if tp is bool:
        if isinstance(value, str):
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name}: expected a boolean, got {value!r}")
        return bool(value)
    if tp in (int, float):
        try:
            return tp(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name}: expected {tp.__name__}, got {value!r}") from exc
    if tp is str:
        return str(value)
    return value


OUTPUT_DIR = "dir"  # option(path=OUTPUT_DIR): an output folder


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    default_factory: Any = dataclasses.MISSING,
    flag: str | None = None,
    metavar: str | None = None,
    group: str | None = None,
    path: bool | str = False,
    cli: bool = True,
    nargs: str | None = None,
    repeat: bool = False,
    aliases: Mapping[str, Any] | None = None,
) -> Any:
    """A config field declared once: its default, its help and how it appears on the command line.

    The CLI of every stage is generated from these fields (`imagenot.cli_options`): the flag is
    `--field-name` unless `flag` says otherwise, the help shows the default, choices come from a `Literal`
    type, `path=True` marks a filesystem path (stored absolute in config.json so a run replays from any
    directory; path="spec" for `KIND:PATH` specs, path="dir" for an output folder, which may not name an
    existing file: `check_paths`), and `cli=False` keeps a field out of the flags (set
    through --config only). A tuple field takes comma-separated values, or several values after one flag
    with `nargs="+"` (`--runs A B C`), or one value per repeated flag with `repeat=True`
    (`--scale a=ratio --scale b=percent`). `aliases` maps values older config files hold to today's (a
    renamed choice), so a recorded config still reads back.
    """
    if path not in (False, True, "spec", OUTPUT_DIR):
        raise ValueError(f"option(path=...) is True, 'spec' or {OUTPUT_DIR!r}, not {path!r}")
    meta = {"help": help, "flag": flag, "metavar": metavar, "group": group, "path": path, "cli": cli,
            "nargs": nargs, "repeat": repeat, "aliases": dict(aliases or {})}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build `cls` from a mapping; unknown keys are an error naming the known ones."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) for {cls.__name__}: {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    for k, v in data.items():
        _refuse_nul(v, f"{cls.__name__}.{k}")
    aliases = {k: f.metadata.get("aliases") or {} for k, f in fields.items()}
    kwargs = {k: _coerce(hints[k], aliases[k].get(v, v) if isinstance(v, str) else v, f"{cls.__name__}.{k}")
              for k, v in data.items()}
    cfg = cls(**kwargs)
    check_paths(cfg)
    return cfg  # type: ignore[return-value]


def check_choices(cfg: Any, prefix: str = "") -> None:
    """Every `Literal`-typed field of `cfg` holds one of its choices (None where the type is optional).

    The one validation of choices: `from_dict` coerces through the same `Literal` types, and a config's
    `__post_init__` calls this for configs built directly, so the choices are written once, in the type.
    """
    for name, (choices, optional) in _literal_fields(type(cfg)).items():
        value = getattr(cfg, name)
        if value in choices or (value is None and optional):
            continue
        raise ConfigError(f"{prefix}{name} {value!r} not one of {', '.join(str(c) for c in choices)}")


@functools.cache
def _literal_fields(cls: type) -> dict[str, tuple[tuple[Any, ...], bool]]:
    """{field: (its Literal choices, whether None is allowed)} of the Literal-typed fields of `cls`."""
    out: dict[str, tuple[tuple[Any, ...], bool]] = {}
    for name, tp in typing.get_type_hints(cls).items():
        optional = False
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            optional = type(None) in args
            non_none = [a for a in args if a is not type(None)]
            tp = non_none[0] if len(non_none) == 1 else tp
        if typing.get_origin(tp) is typing.Literal:
            out[name] = (typing.get_args(tp), optional)
    return out


def _refuse_nul(value: Any, name: str) -> None:
    """A NUL byte is in no file name and no setting: said here, once, instead of a ValueError traceback from
    the first open() of whichever stage reads the value (config files are where such bytes come from)."""
    if isinstance(value, str):
        if "\0" in value:
            raise ConfigError(f"{name}: {value!r} contains a NUL byte, which no path or setting may hold")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _refuse_nul(k, name)
            _refuse_nul(v, f"{name}.{k}")
    elif isinstance(value, (list, tuple)):
        for v in value:
            _refuse_nul(v, name)


def check_paths(cfg: Any) -> None:
    """The path options of a config that cannot work, refused before any stage starts: a path field that is
    not text, and an output folder (option(path="dir")) that names an existing file."""
    for f in dataclasses.fields(cfg):
        kind = f.metadata.get("path")
        value = getattr(cfg, f.name)
        if not kind or value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(v, (str, Path)) for v in values):
            raise ConfigError(f"{type(cfg).__name__}.{f.name}: expected a path, got {value!r}")
        if kind == OUTPUT_DIR and value and Path(value).expanduser().exists() \
                and not Path(value).expanduser().is_dir():
            flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
            raise ConfigError(f"{flag} {value}: exists and is not a folder; choose a folder (new or existing)")


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config (tuples become lists, paths strings)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return conv(cfg)


MAX_CONFIG_BYTES = 16 << 20


def _load_yaml(text: str) -> Any:
    """yaml.safe_load without anchors and aliases: a config never needs them, and nested aliases ("billion
    laughs") expand a few hundred bytes into gigabytes before any size check could run."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise ConfigError(f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                                  "allowed in imagenot configs; write the values out")
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # YAML lets the last of two equal keys win without a word; in a plan that silently drops settings
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                with contextlib.suppress(TypeError):  # unhashable keys fail in the base class, as before
                    if key in first:
                        raise ConfigError(f"line {line}: key {key!r} is given twice (first on line {first[key]}); "
                                          "YAML would keep only the last: remove one")
                    first[key] = line
            return super().construct_mapping(node, deep)

    return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: a key given twice in one object is an error (json keeps the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"key {key!r} is given twice in one object; JSON would keep only the last: remove one")
        out[key] = value
    return out


def load_mapping(path: str | Path) -> dict[str, Any]:
    """Read a json or yaml mapping; the suffix decides."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size} bytes is not a config file (limit {MAX_CONFIG_BYTES})")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text config file ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            data = _load_yaml(text)
        else:
            data = json.loads(text, object_pairs_hook=_unique_pairs)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - both parsers raise their own types
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'json'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level, got {type(data).__name__}")
    return data


def resolve(
    cls: type[T],
    *,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    keep_none: bool = False,
) -> T:
    """Layer defaults < preset < config file < explicit overrides (None overrides are ignored unless
    `keep_none`: then an explicit None, e.g. `"epochs": null` in a config file, unsets a preset's value).

    The config file's path fields are made absolute against the file's folder (a written config.json replays
    from any directory), and an override of a dict field merges over the file's mapping instead of replacing
    it; a value the file gets wrong is reported with the file's name.
    """
    data: dict[str, Any] = {}
    if preset is not None:
        presets = presets or {}
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(sorted(presets)) or '(none)'}")
        data.update(presets[preset])
    file_data = _file_layer(cls, config_file) if config_file is not None else {}
    data.update(file_data)
    if overrides:
        data.update(_merge_dicts(cls, file_data, {k: v for k, v in overrides.items() if keep_none or v is not None}))
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        if config_file is None:
            raise
        raise ConfigError(f"{config_file}: {exc}") from exc


def _file_layer(cls: type, config_file: str | Path) -> dict[str, Any]:
    """A config file's mapping, less its `_meta` record, with its path fields absolute against its folder."""
    loaded = load_mapping(config_file)
    loaded.pop("_meta", None)
    return absolute_paths(cls, loaded, base=Path(config_file).resolve().parent)


def _merge_dicts(cls: type, below: Mapping[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` with each dict value of a dict field merged over `below`'s mapping for that field."""
    hints = typing.get_type_hints(cls)
    out = dict(overrides)
    for key, value in overrides.items():
        if isinstance(value, dict) and key in hints and _is_dict_type(hints[key]):
            out[key] = {**dict(below.get(key) or {}), **value}
    return out


def _is_dict_type(tp: Any) -> bool:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        non_none = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = non_none[0] if len(non_none) == 1 else tp
    return typing.get_origin(tp) in (dict, Mapping) or tp is dict


def _absolute(value: str, base: Path, kind: Any) -> str:
    if kind == "spec":  # only the path a spec names (imagenot.spec's rule); a bare name such as scratch stays
        spec = Spec.parse(value)
        return value if spec.path is None else str(spec.with_arg(_absolute(spec.path, base, True)))
    path = Path(value).expanduser()
    return os.path.normpath(path if path.is_absolute() else base / path)


def absolute_paths(cls: type, data: Mapping[str, Any], base: str | Path | None = None) -> dict[str, Any]:
    """`data` with the values of `cls`'s path fields (option(path=True), or path="spec" for `KIND:PATH`
    specs) made absolute against `base` (default: the working directory), so a written config replays from
    any directory."""
    root = Path(base) if base is not None else Path.cwd()
    out = dict(data)
    for f in dataclasses.fields(cls):
        kind = f.metadata.get("path")
        value = out.get(f.name)
        if not kind or value is None:
            continue
        if isinstance(value, str):
            out[f.name] = _absolute(value, root, kind)
        elif isinstance(value, (list, tuple)):
            out[f.name] = type(value)(_absolute(v, root, kind) if isinstance(v, str) else v for v in value)
    return out


def to_record(cfg: Any) -> dict[str, Any]:
    """What a stage writes as its `config.json`: `to_dict` with every path field absolute."""
    return absolute_paths(type(cfg), to_dict(cfg))


def replace(cfg: T, **changes: Any) -> T:
    """dataclasses.replace with the same unknown-key check as `from_dict`."""
    return from_dict(type(cfg), {**to_dict(cfg), **changes})
