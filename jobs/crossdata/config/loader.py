"""Load YAML profiles into typed settings; every error names the key and where it came from.

Order of precedence, lowest first: ``conf/base.yaml``, the profile overlay
``conf/<profile>.yaml``, then each ``--set section.key=value`` in the order given.
Strings may hold ``${env:NAME}`` references; they are resolved here and remembered so
``config show`` can mask them.
Nothing here imports pyspark: a bad config stops the job before any JVM starts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from crossdata.errors import ConfigError

T = TypeVar("T")

ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "***"


@dataclasses.dataclass(frozen=True)
class Layer:
    """One source of settings: a YAML file or the command line."""

    label: str
    data: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Loaded:
    """The result of loading: typed settings plus what is needed to show and hash them."""

    settings: Any
    raw: dict[str, Any]
    origins: dict[str, str]
    secret_keys: Mapping[str, str]  # key -> the ${env:...} template it was written as
    profile: str
    conf_dir: Path

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, values from the environment shown as templates."""
        return _mask(dataclasses.asdict(self.settings), self.secret_keys)

    def fingerprint(self) -> str:
        """A stable hash of the effective (masked) settings, recorded with every job run."""
        text = json.dumps(self.masked(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_conf_dir() -> Path:
    """``$CROSSDATA_CONF_DIR``, else ``./conf``, else the ``conf/`` of the source checkout."""
    env = os.environ.get("CROSSDATA_CONF_DIR")
    if env:
        return Path(env)
    here = Path.cwd() / "conf"
    if (here / "base.yaml").is_file():
        return here
    return Path(__file__).resolve().parents[3] / "conf"


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b=value`` -> (``a.b``, value parsed as a YAML scalar or flow collection)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse value {value!r}: {exc}") from None
    return key.strip(), parsed


def load_layers(conf_dir: Path, profile: str) -> list[Layer]:
    """Read base.yaml and the profile overlay as layers (no typing yet)."""
    base = conf_dir / "base.yaml"
    if not base.is_file():
        raise ConfigError(f"{base}: not found (point --conf-dir or CROSSDATA_CONF_DIR at conf/)")
    layers = [Layer(str(base), _read_yaml(base))]
    if profile != "base":
        overlay = conf_dir / f"{profile}.yaml"
        if not overlay.is_file():
            known = sorted(p.stem for p in conf_dir.glob("*.yaml") if p.stem != "base")
            raise ConfigError(
                f"--profile {profile}: no file {overlay}; profiles here: {', '.join(known)}"
            )
        layers.append(Layer(str(overlay), _read_yaml(overlay)))
    return layers


def load(
    schema: type[T],
    conf_dir: Path | None = None,
    profile: str = "local",
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Loaded:
    """Load and validate settings of type ``schema``; raise ConfigError naming key and source."""
    conf_dir = conf_dir or default_conf_dir()
    layers = load_layers(conf_dir, profile)
    for item in overrides:
        key, value = parse_override(item)
        layers.append(Layer("--set", _nest(key, value)))
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer in layers:
        _merge(merged, layer.data, layer.label, origins, prefix="")
    env = os.environ if environ is None else environ
    secret_keys: dict[str, str] = {}
    resolved = _resolve_env(merged, env, origins, secret_keys, prefix="")
    settings = build(schema, resolved, origins, prefix="")
    return Loaded(settings, resolved, origins, secret_keys, profile, conf_dir)


def build(cls: type[T], data: Any, origins: Mapping[str, str], prefix: str) -> T:
    """Turn plain data into the dataclass ``cls``, checking every key and type."""
    where = _origin(origins, prefix)
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where}: {prefix or '<root>'}: expected a mapping of settings, "
            f"got {type(data).__name__} {data!r}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            full = _join(prefix, key)
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            allowed = ", ".join(sorted(fields))
            raise ConfigError(
                f"{origins.get(full, where)}: {full}: unknown key{hint}; allowed here: {allowed}"
            )
    values: dict[str, Any] = {}
    for name, field in fields.items():
        full = _join(prefix, name)
        if name in data:
            values[name] = _coerce(hints[name], data[name], origins, full)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: {full}: missing required setting")
    try:
        obj = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {prefix or '<root>'}: {exc}") from None
    check = getattr(obj, "validate", None)
    if callable(check):
        problem = check()
        if problem:
            # A problem starts with the key(s) it is about ("a/b: ..."): name where the first
            # came from (a --set, a profile), not where the section began.
            named = re.split(r"[/.\[]", problem.split(":", 1)[0])[0].strip()
            src = origins.get(_join(prefix, named), where) if named in fields else where
            raise ConfigError(f"{src}: {prefix}.{problem}" if prefix else f"{src}: {problem}")
    return obj


def _coerce(tp: Any, value: Any, origins: Mapping[str, str], key: str) -> Any:
    origin = get_origin(tp)
    src = _origin(origins, key)

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{src}: {key}: expected {expected}, got {value!r}")

    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        errors: list[ConfigError] = []
        for arg in others:
            try:
                return _coerce(arg, value, origins, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else bad(" or ".join(map(_type_name, others)))
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{src}: {key}: {value!r} is not allowed; choose one of "
                + ", ".join(repr(a) for a in allowed)
            )
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, origins, key)  # type: ignore[arg-type]
    if origin in (tuple, list, Sequence):
        args = get_args(tp)
        if not isinstance(value, list | tuple):
            raise bad("a list")
        item_tp = args[0] if args else Any
        return tuple(_coerce(item_tp, v, origins, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise bad("a mapping")
        k_tp, v_tp = get_args(tp) or (str, Any)
        return {
            _coerce(k_tp, k, origins, key): _coerce(v_tp, v, origins, _join(key, str(k)))
            for k, v in value.items()
        }
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if tp is str:
        if isinstance(value, dt.date):  # YAML reads 2026-03-02 as a date
            return value.isoformat()
        if not isinstance(value, str):
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
            raise bad("a string")
        return value
    if tp is dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise bad("a date YYYY-MM-DD") from None
    raise ConfigError(f"{src}: {key}: unsupported setting type {tp!r}")  # a schema bug


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", repr(tp))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _merge(
    into: dict[str, Any], new: Mapping[str, Any], label: str, origins: dict[str, str], prefix: str
) -> None:
    for key, value in new.items():
        full = _join(prefix, str(key))
        if isinstance(value, Mapping) and isinstance(into.get(key), dict) and value:
            _merge(into[key], value, label, origins, full)
        else:
            into[key] = _copy(value)
            for k in [k for k in origins if k.startswith(full + ".")]:
                del origins[k]
            _record(origins, value, label, full)


def _record(origins: dict[str, str], value: Any, label: str, full: str) -> None:
    origins[full] = label
    if isinstance(value, Mapping):
        for k, v in value.items():
            _record(origins, v, label, _join(full, str(k)))


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _origin(origins: Mapping[str, str], key: str) -> str:
    """Where ``key``'s value came from: the key itself, a key below it, or the nearest key
    above it (a list or mapping given whole, e.g. ``--set collect.expectations=[...]``)."""
    found = origins.get(key) or _origin_below(origins, key)
    while not found and key:
        parent = re.sub(r"(\.[^.\[\]]*|\[\d+\])$", "", key)
        key = "" if parent == key else parent
        found = origins.get(key)
    return found or "defaults"


def _origin_below(origins: Mapping[str, str], prefix: str) -> str | None:
    for key, label in origins.items():
        if key.startswith(prefix + "."):
            return label
    return None


def _resolve_env(
    value: Any,
    env: Mapping[str, str],
    origins: Mapping[str, str],
    secrets: dict[str, str],
    prefix: str,
) -> Any:
    if isinstance(value, dict):
        return {
            k: _resolve_env(v, env, origins, secrets, _join(prefix, str(k)))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_env(v, env, origins, secrets, prefix) for v in value]
    if isinstance(value, str) and ENV_REF.search(value):
        secrets[prefix] = value

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"{origins.get(prefix, 'defaults')}: {prefix}: environment variable "
                    f"{name} is not set (referenced as ${{env:{name}}})"
                )
            return env[name]

        return ENV_REF.sub(sub, value)
    return value


def _mask(value: Any, secrets: Mapping[str, str], prefix: str = "") -> Any:
    if prefix in secrets:
        # Show where the value comes from, never the value itself.
        return ENV_REF.sub(lambda m: f"<{MASK} from ${m.group(1)}>", secrets[prefix])
    if isinstance(value, dict):
        return {k: _mask(v, secrets, _join(prefix, str(k))) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, secrets, prefix) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
