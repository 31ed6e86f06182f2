"""Kinds and tools written in Python: @loom.kind and @loom.tool (docs/python.md).

A kind's spec is read off the decorated function's signature:
- positional parameters without a default are its input ports (one: the port `in`; several: ports named after
  them, and a call gets the value on its own port's parameter and None on the others); none: a source, whose
  function returns an iterable (a generator) of the values to emit;
- parameters with a default, and keyword-only ones, are its params (type from the annotation, else from the
  default; keyword-only without a default: required);
- output ports: `out`, none when the return annotation is None, or the `outputs=` given.
A call's result: None emits nothing, a generator emits each value it yields, loom.To(port, v) goes to that
port, anything else is one value on the first port.

A class is a kind with state: its __init__'s keyword parameters are the params, __call__(self, x) handles a
value; optional finish(self) (emits like a call, at the end), state(self) -> value saved as the checkpoint
after each step and restore(self, state) on a restarted instance (the kind is then `stateful`).
"""
from __future__ import annotations

import functools
import inspect
import threading
import typing
from typing import Any, Callable, Optional, Sequence

specs: dict = {}  # kind name -> (spec dict, make)
generation = 0
_lock = threading.Lock()

_TYPES = {bool: "boolean", int: "integer", float: "floating", str: "string", list: "list", dict: "map",
          tuple: "list"}


def registered_kinds() -> list:
    """The names of the kinds registered from Python."""
    return sorted(specs)


def _register(spec: dict, make: Callable) -> None:
    global generation
    with _lock:
        specs[spec["name"]] = (spec, make)
        generation += 1


def _param_type(annotation: Any, default: Any) -> "tuple[str, str]":
    """(loom param type, doc) from an annotation (Annotated[T, "doc"], Optional[T], list[int], ...)."""
    doc = ""
    t = annotation
    if typing.get_origin(t) is typing.Annotated:
        args = typing.get_args(t)
        t = args[0]
        doc = next((m for m in args[1:] if isinstance(m, str)), "")
    origin = typing.get_origin(t)
    if origin is typing.Union:
        rest = [a for a in typing.get_args(t) if a is not type(None)]
        t = rest[0] if len(rest) == 1 else Any
        origin = typing.get_origin(t)
    if origin is not None:
        t = origin
    if t in _TYPES:
        return _TYPES[t], doc
    if t is inspect.Parameter.empty and default is not inspect.Parameter.empty and type(default) in _TYPES:
        return _TYPES[type(default)], doc
    return "any", doc


def _param(p: inspect.Parameter, hints: dict, required_if_no_default: bool = True) -> dict:
    ptype, doc = _param_type(hints.get(p.name, p.annotation), p.default)
    d = {"name": p.name, "type": ptype, "doc": doc}
    if p.default is inspect.Parameter.empty:
        d["required"] = required_if_no_default
    elif p.default is not None:
        d["default"] = list(p.default) if isinstance(p.default, tuple) else p.default
    return d


def _hints(fn) -> dict:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        return {}


def _first_line(doc: Optional[str]) -> str:
    if not doc:
        return ""
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ").strip()


def _doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""


class _Handler:
    """What the native side calls for one node instance (python/src/kinds.cpp reads these attributes)."""

    __slots__ = ("call", "multi", "pull", "finish", "checkpoint", "tool")

    def __init__(self, call=None, multi=False, pull=None, finish=None, checkpoint=None, tool=None):
        self.call = call
        self.multi = multi
        self.pull = pull
        self.finish = finish
        self.checkpoint = checkpoint
        self.tool = tool


def _coerce(params: dict, specs_: list) -> dict:
    """Params as the function expects them (a floating param written as an int arrives as an int)."""
    for p in specs_:
        if p["type"] == "floating" and isinstance(params.get(p["name"]), int):
            params[p["name"]] = float(params[p["name"]])
    return params


def _signature_ports(fn, skip_self: bool):
    sig = inspect.signature(fn)
    hints = _hints(fn)
    inputs, params = [], []
    plist = list(sig.parameters.values())
    if skip_self:
        plist = plist[1:]
    for p in plist:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            inputs.append(p.name)
        else:
            params.append(_param(p, hints))
    return inputs, params, sig, hints


def _spec_for_function(name, fn, doc, inputs, outputs):
    in_names, params, sig, hints = _signature_ports(fn, skip_self=False)
    return _spec(name, doc or _first_line(fn.__doc__) or f"{fn.__name__} (Python)", in_names, inputs, params,
                 outputs, hints.get("return", sig.return_annotation), stateful=False)


def _spec(name, doc, in_names, inputs, params, outputs, returns, stateful):
    if inputs is None:
        inputs = ["in"] if len(in_names) == 1 else list(in_names)
    if len(inputs) != len(in_names):
        raise TypeError(f"kind `{name}`: inputs={inputs!r} names {len(inputs)} ports, the function takes "
                        f"{len(in_names)} values ({', '.join(in_names)})")
    if outputs is None:
        outputs = [] if returns is None or returns is type(None) else ["out"]
    return {
        "name": name,
        "doc": doc,
        "inputs": [(p, f"`{a}`") for p, a in zip(inputs, in_names)],
        "outputs": [(p, "") for p in outputs],
        "params": params,
        "stateful": stateful,
        "call": None,
    }, in_names


def kind(name: Optional[str] = None, *, doc: Optional[str] = None, inputs: Optional[Sequence[str]] = None,
         outputs: Optional[Sequence[str]] = None):
    """Makes a function (or a class) a loom kind named `name` ("family.name"; default "py.<function>"),
    usable in graphs built here or loaded from YAML. Returns the function unchanged, with `loom_kind` set.

        @loom.kind("acme.upper")
        def upper(text: str, *, suffix: str = "!") -> str:
            return text.upper() + suffix

    Instances run on threads of their own and hold the GIL only while Python runs; an exception fails the
    node with the Python traceback (the node's `restarts` apply)."""
    if callable(name) and not isinstance(name, str):  # @loom.kind without arguments
        return kind()(name)

    def decorate(obj):
        kind_name = name or f"py.{obj.__name__.lower()}"
        if inspect.isclass(obj):
            spec, make = _class_kind(kind_name, obj, doc, inputs, outputs)
        else:
            spec, make = _function_kind(kind_name, obj, doc, inputs, outputs)
        spec["module"] = getattr(obj, "__module__", None) or ""
        _register(spec, make)
        obj.loom_kind = kind_name
        return obj

    return decorate


def _function_kind(kind_name, fn, doc, inputs, outputs):
    spec, in_names = _spec_for_function(kind_name, fn, doc, inputs, outputs)
    pspecs = spec["params"]

    def make(params, instance, replicas, attempt, restored):
        params = _coerce(dict(params), pspecs)
        if not in_names:
            return _Handler(pull=iter(fn(**params)))
        if len(in_names) == 1:
            return _Handler(call=functools.partial(fn, **params) if params else fn)
        none = {n: None for n in in_names}

        def call(port, value):
            args = dict(none)
            args[in_names[port]] = value
            return fn(**args, **params)

        return _Handler(call=call, multi=True)

    return spec, make


def _class_kind(kind_name, cls, doc, inputs, outputs):
    init = cls.__init__ if cls.__init__ is not object.__init__ else None
    params, in_names, returns = [], [], inspect.Parameter.empty
    if init is not None:
        # In a class, every __init__ parameter is a param (positional ones without default are required).
        sig = inspect.signature(init)
        hints = _hints(init)
        params = [_param(p, hints) for p in list(sig.parameters.values())[1:]
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if "__call__" in dir(cls) and cls.__call__ is not type.__call__:
        in_names, _, sig, hints = _signature_ports(cls.__call__, skip_self=True)
        returns = hints.get("return", sig.return_annotation)
    stateful = hasattr(cls, "state")
    spec, in_names = _spec(kind_name, doc or _first_line(cls.__doc__) or f"{cls.__name__} (Python)", in_names,
                           inputs, params, outputs, returns, stateful)
    pspecs = spec["params"]

    def make(params, instance, replicas, attempt, restored):
        obj = cls(**_coerce(dict(params), pspecs))
        if attempt > 0 and restored is not None and hasattr(obj, "restore"):
            obj.restore(restored)
        h = _Handler(finish=getattr(obj, "finish", None), checkpoint=getattr(obj, "state", None))
        if not in_names:
            h.pull = iter(obj)
        elif len(in_names) == 1:
            h.call = obj
        else:
            none = {n: None for n in in_names}

            def call(port, value):
                args = dict(none)
                args[in_names[port]] = value
                return obj(**args)

            h.call = call
            h.multi = True
        return h

    return spec, make


def tool(name=None, *, doc: Optional[str] = None):
    """Makes a function a tool an agent can call (`tools: [node]` on an agent.llm node): a kind whose node is
    called with the function's arguments and replies with what it returns. The arguments' JSON schema comes
    from the type hints (Annotated[str, "what it is"] adds a description), the tool's description from the
    docstring's first paragraph. Name default: "py.<function>". An exception replies with an error.

        @loom.tool("acme.weather")
        def weather(city: str, days: int = 1) -> dict:
            "The forecast for a city."
            return {"city": city, "temperature": 21}
    """
    if callable(name) and not isinstance(name, str):
        return tool()(name)

    def decorate(fn):
        kind_name = name or f"py.{fn.__name__.lower()}"
        sig = inspect.signature(fn)
        hints = _hints(fn)
        arguments = [_param(p, hints) for p in sig.parameters.values()
                     if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        description = doc or _first_line(fn.__doc__) or fn.__name__
        spec = {
            "name": kind_name,
            "doc": description,
            "inputs": [],
            "outputs": [],
            "params": [],
            "stateful": False,
            "call": {"doc": description, "arguments": arguments},
        }

        def make(params, instance, replicas, attempt, restored):
            return _Handler(tool=fn)

        spec["module"] = getattr(fn, "__module__", None) or ""
        _register(spec, make)
        fn.loom_kind = kind_name
        return fn

    return decorate
