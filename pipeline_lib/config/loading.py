"""Loading the settings: :func:`load_settings` reads :class:`Settings` from a TOML file,
``PIPELINE_*`` environment variables and arguments, with the helpers that read the TOML, find
keys no setting has, and turn every problem into one line naming where the value came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict

from pipeline_lib.config.settings import Settings


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_file`` (TOML), the environment and ``overrides``, in that order.

    ``PIPELINE_CONFIG`` names the file when ``config_file`` is not given. Invalid settings
    raise :class:`pipeline_lib.errors.ConfigError` (a ValueError) with one line per problem,
    each naming where the value came from (the config file, a ``PIPELINE_*`` variable) and the
    setting, e.g. ``config file my.toml: training.max_epochs: Input should be greater than or
    equal to 1 (got -1)``; a TOML syntax error names the file and the line. A key that no
    setting has is an error at every level (a typo is never silently ignored).
    """
    import os

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from pipeline_lib.errors import ConfigError, ConfigFileNotFound

    path = config_file or os.environ.get("PIPELINE_CONFIG")
    if path is not None and not Path(path).is_file():
        raise ConfigFileNotFound(f"config file not found: {path}")
    origin = _Origin(path, overrides, os.environ)
    unknown = [(f"config file {path}", loc) for loc in _unknown_keys(Settings, _read_toml(path))]
    unknown += [(origin(loc), loc) for loc in _unknown_keys(Settings, origin.env)]
    problems = [f"{where}: {_dotted(loc)}: unknown setting" for where, loc in unknown]

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    cause: Exception | None = None
    try:
        loaded = _FromFile(**overrides)
        settings = Settings.model_validate(loaded.model_dump())
    except ValidationError as exc:
        cause = exc
        problems += [_problem(error, origin) for error in exc.errors()]
    except SettingsError as exc:  # e.g. a PIPELINE_* variable that should hold JSON does not
        cause = exc
        detail = f" ({exc.__cause__})" if exc.__cause__ else ""
        problems.append(f"PIPELINE_* environment: {exc}{detail}")
    if problems:
        raise ConfigError(problems) from cause
    return settings


class _Origin:
    """Where the value at a location came from, for messages: an argument, the ``PIPELINE_*``
    variable that set it (they win over the file), else the config file."""

    def __init__(self, path: str | Path | None, overrides: dict[str, Any], environ: Any) -> None:
        self.path, self.overrides = path, overrides
        prefix = "PIPELINE_"
        self.names = {k.upper(): k for k in environ if k.upper().startswith(prefix)}
        self.env: dict[str, Any] = {}  # the nested PIPELINE_A__B=... variables, as a tree
        for upper, name in self.names.items():
            parts = upper.removeprefix(prefix).lower().split("__")
            if len(parts) < 2 or parts[0] not in Settings.model_fields:
                continue  # a top-level value, or not a setting (PIPELINE_CONFIG, PIPELINE_DEBUG)
            node = self.env
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    break
                node = child
            else:
                node[parts[-1]] = environ[name]

    def __call__(self, loc: tuple[Any, ...]) -> str:
        if loc and loc[0] in self.overrides:
            return "load_settings() argument"
        for n in range(len(loc), 0, -1):
            wanted = "PIPELINE_" + "__".join(str(p) for p in loc[:n]).upper()
            if wanted in self.names:
                return f"environment variable {self.names[wanted]}"
        return f"config file {self.path}" if self.path is not None else "PIPELINE_* environment"


def _read_toml(path: str | Path | None) -> dict[str, Any]:
    """The config file's table ({} without a file); a ConfigError naming the file and the line
    when it is not valid TOML or cannot be read."""
    import re
    import tomllib

    from pipeline_lib.errors import ConfigError

    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        if m := re.fullmatch(r"(.*) \(at (line \d+, column \d+|end of document)\)", text):
            raise ConfigError(f"config file {path}: {m[2]}: invalid TOML: {m[1]}") from exc
        raise ConfigError(f"config file {path}: invalid TOML: {text}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc.strerror})") from exc


def _held_model(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """The settings model a field holds and whether it holds a list of them, or None (a plain
    value, or a free mapping such as a source's ``options``)."""
    import types
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple) and args:
        inner = _held_model(args[0])
        return (inner[0], True) if inner is not None and not inner[1] else None
    if origin in (typing.Union, types.UnionType):
        held = [m for a in args if a is not type(None) and (m := _held_model(a)) is not None]
        return held[0] if len(held) == 1 else None
    return None


def _unknown_keys(
    model: type[BaseModel], data: Any, loc: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Locations of keys in ``data`` that ``model`` has no field for. The nested models ignore
    unknown keys, so a typo such as ``[training] max_epoch = 5`` would be dropped without a
    word; a model that forbids them (Settings itself) is left to pydantic's own error."""
    if not isinstance(data, dict):
        return []
    found: list[tuple[Any, ...]] = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            if model.model_config.get("extra") in (None, "ignore"):
                found.append((*loc, key))
            continue
        held = _held_model(field.annotation)
        if held is None:
            continue
        sub, many = held
        if not many:
            found += _unknown_keys(sub, value, (*loc, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                found += _unknown_keys(sub, item, (*loc, key, i))
    return found


def _dotted(loc: tuple[Any, ...]) -> str:
    """``("series", 0, "id")`` as ``series[0].id``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out


def _problem(error: Any, origin: _Origin) -> str:
    """One pydantic error as one line: where from, which setting, what is wrong, the value
    (never the value of a secret: the database URL may hold a password)."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    message = "unknown setting" if kind == "extra_forbidden" else error.get("msg", "")
    message = message.removeprefix("Value error, ")
    value, shown = error.get("input"), ""
    secret = bool(loc) and loc[0] in ("database_url", "credentials")
    if kind not in ("missing", "extra_forbidden") and not secret:
        if not isinstance(value, dict | list):
            text = repr(value)
            shown = f" (got {text if len(text) <= 80 else text[:77] + '...'})"
    setting = _dotted(loc)
    return f"{origin(loc)}: {setting + ': ' if setting else ''}{message}{shown}"
