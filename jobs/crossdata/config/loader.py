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
    # name -> value of each environment variable the settings reference (secrets, for
    # redact(); never printed)
    env_values: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    def redact(self, text: str) -> str:
        """``text`` with every value read from the environment shown as ``<*** from $NAME>``."""
        return _redacted(text, self.env_values)

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


def parse_override(text: str, schema: type | None = None) -> tuple[str, Any]:
    """``a.b=value`` -> (``a.b``, value).

    The value is read as a YAML scalar or flow collection, except where ``schema`` says the
    key holds text: there the text is kept as written (YAML 1.1 would read ``0755`` as 493,
    ``12:30`` as 750 and cut ``/data/raw #2`` at its ``#``), unless it is quoted or is a
    ``[...]``/``{...}`` collection. Numbers are read as Python reads them (``1e-5``, ``0755``).
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    _, tp = _setting(schema, key)
    if tp is not None:
        kept = _as_written(tp, value)
        if kept is not _NOT_KEPT:
            return key, kept
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date like 2026-02-30
        raise ConfigError(f"--set {key}: cannot parse value {value!r}: {exc}") from None
    return key, parsed


_NOT_KEPT = object()
_NULLS = ("null", "Null", "NULL", "~")


def _as_written(tp: Any, text: str) -> Any:
    """The value of ``text`` for a field of type ``tp`` without YAML, or ``_NOT_KEPT``."""
    args = get_args(tp)
    if get_origin(tp) in (typing.Union, types.UnionType):
        if type(None) in args and text.strip() in _NULLS:
            return None
        others = [a for a in args if a is not type(None)]
        return _as_written(others[0], text) if len(others) == 1 else _NOT_KEPT
    stripped = text.strip()
    if stripped[:1] in ("'", '"', "[", "{"):
        return _NOT_KEPT  # quoted text or a collection: YAML reads it
    textual = _is_text(tp) or (get_origin(tp) is Literal and all(isinstance(a, str) for a in args))
    if textual:
        return text
    if tp in (int, float):
        try:
            return tp(stripped)
        except ValueError:
            return _NOT_KEPT  # not a number: YAML reads it, the type check names the key
    return _NOT_KEPT


def _setting(schema: type | None, dotted: str) -> tuple[list[str], Any]:
    """Where ``--set dotted=...`` goes in ``schema``: the keys it nests under (split on dots
    down to a mapping setting, whose own key is the rest, dots and all:
    ``spark.conf.spark.sql.shuffle.partitions``) and the setting's type (None when the name
    is no setting of the schema; loading then names it as unknown)."""
    parts = dotted.split(".")
    tp: Any = schema
    for i, name in enumerate(parts):
        tp = _unwrap_optional(tp)
        if get_origin(tp) in (dict, Mapping):
            return [*parts[:i], ".".join(parts[i:])], (get_args(tp) or (str, Any))[1]
        if tp is None or not dataclasses.is_dataclass(tp):
            return parts, None
        tp = typing.get_type_hints(tp).get(name)
    return parts, tp


def _unwrap_optional(tp: Any) -> Any:
    if get_origin(tp) in (typing.Union, types.UnionType):
        others = [a for a in get_args(tp) if a is not type(None)]
        if len(others) == 1:
            return others[0]
    return tp


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
        key, value = parse_override(item, schema)
        layers.append(Layer("--set", _nest(_setting(schema, key)[0], value)))
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer in layers:
        _merge(merged, layer.data, layer.label, origins, prefix="")
    env = os.environ if environ is None else environ
    secret_keys: dict[str, str] = {}
    resolved = _resolve_env(merged, env, origins, secret_keys, prefix="")
    names = {m.group(1) for t in secret_keys.values() for m in ENV_REF.finditer(t)}
    env_values = {n: env[n] for n in names if env.get(n)}
    try:
        settings = build(schema, resolved, origins, prefix="")
    except ConfigError as exc:
        # A message may quote a value; one read from the environment is shown as its name.
        raise ConfigError(_redacted(str(exc), env_values)) from None
    return Loaded(settings, resolved, origins, secret_keys, profile, conf_dir, env_values)


def _redacted(text: str, env_values: Mapping[str, str]) -> str:
    """``text`` with each of ``env_values`` (name -> value) replaced by ``<*** from $NAME>``
    (longest first, so a value inside another is not half masked)."""
    values = sorted(((v, n) for n, v in env_values.items()), key=lambda vn: -len(vn[0]))
    for value, name in values:
        text = text.replace(value, f"<{MASK} from ${name}>")
        text = text.replace(repr(value)[1:-1], f"<{MASK} from ${name}>")  # as !r quotes it
    return text


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
            src = _latest_origin(origins, _join(prefix, named)) if named in fields else where
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
    if _is_text(tp) and tp is not str:
        # A kind of text read from any scalar (a Spark setting: YAML's true is "true").
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | str):
            return str(value)
        raise bad("a value (text, a number, true or false)")
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


def _is_text(tp: Any) -> bool:
    """``str``, or a subclass of it the schema names (see ``schema.SparkValue``)."""
    return isinstance(tp, type) and issubclass(tp, str)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", repr(tp))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date like 2026-02-30
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _nest(parts: Sequence[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(parts):
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
    origins.pop(full, None)  # re-inserted: the origins' order is the order they were set in
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


def _latest_origin(origins: Mapping[str, str], key: str) -> str:
    """The source that last set ``key`` or a key below it (an overlay or a ``--set`` that
    adds one entry to a mapping of base.yaml is more likely at fault than base.yaml)."""
    for k, label in reversed(list(origins.items())):
        if k == key or k.startswith((key + ".", key + "[")):
            return label
    return _origin(origins, key)


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
        return [
            _resolve_env(v, env, origins, secrets, f"{prefix}[{i}]") for i, v in enumerate(value)
        ]
    if isinstance(value, str) and ENV_REF.search(value):
        secrets[prefix] = value

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"{_origin(origins, prefix)}: {prefix}: environment variable "
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
        return [_mask(v, secrets, f"{prefix}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
