"""Agent networks described as data (the ``agent.network`` section of an experiment YAML).

The same description a user writes in Python with ``NeuronGroup``/``Connection``/``LearningRule``
can be written in YAML, validated with errors that name the YAML path::

    agent:
      name: eprop_ac                 # the learning recipe: eprop_ac, rstdp or bptt_ac
      network:
        encoder: {name: gaussian_rf, n_per_dim: 8}          # neurorl.encoding.ENCODERS
        input: obs                   # the group the encoder drives
        output: readout              # the group the decoder reads
        noise: {}                    # group -> std of a Gaussian current per substep
        groups:
          - {name: obs, model: Input, n: encoder}
          - {name: exc, model: LIF, n: 48, sign: excitatory, params: {tau_mem: 10.0}}
          - {name: inh, model: LIF, n: 16, sign: inhibitory, params: {tau_mem: 10.0}}
          - {name: readout, model: LI, n: n_actions + 1, params: {tau_mem: 5.0}}
        connections:
          - {source: obs, target: exc, delay: 0, weight: {init: normal, std: 0.35}}
          - {source: exc, target: inh, rule: probabilistic, p: 0.5, weight: 0.3}
          ...
        rules:
          - {connection: obs->exc, rule: eprop, params: {tau_out: 5.0}}

Group sizes are whole numbers or small expressions of ``encoder`` (the encoder's ``n_in``),
``n_actions`` and ``obs_dim`` with ``+``, ``-``, ``*`` and parentheses (``n_actions * 10``,
``(n_actions + 1) * 4``); the expression is parsed, never run as Python.
A connection's keys are :class:`~neurorl.core.network.Connection`'s arguments (``rule`` is the
connectivity rule: all_to_all, one_to_one, probabilistic with ``p``, fixed_fan_in with ``k``);
``name`` defaults to ``"source->target"``. ``rules: eprop`` (a string) or ``rules: {rule: eprop,
params: {...}}`` puts that rule on every connection (errors then name ``rules`` /
``rules.rule``, where it was written); a list holds ``{connection, rule}`` entries. Keys are
written with underscores: a key with a space or a hyphen (``tau mem``) is an error that names
it as written and the valid key.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Mapping
from typing import Any

from neurorl.agents.base import AgentSpec
from neurorl.agents.network_agent import AgentNetwork
from neurorl.errors import ConfigError, NeurorlError, ShapeError, closest

GROUP_KEYS = ("name", "model", "n", "params", "sign", "bias", "v_init", "input")
CONNECTION_KEYS = ("source", "target", "rule", "synapse", "tau_syn", "weight", "delay", "sign",
                   "storage", "seed", "name", "p", "k", "allow_self")
RULE_KEYS = ("connection", "rule", "params", "name")
NETWORK_KEYS = ("encoder", "groups", "connections", "rules", "input", "output", "noise",
                "spiking_input")


def _underscore_hint(key: Any) -> str:
    """The reminder for a key written with a space or a hyphen (``tau mem``), else ``""``."""
    if isinstance(key, str) and re.search(r"[\s-]", key.strip()):
        return " (keys are written with underscores, no spaces or hyphens)"
    return ""


def _check_keys(path: str, d: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()
                ) -> dict[str, Any]:
    if not isinstance(d, Mapping):
        raise ConfigError(path, d, f"a mapping with keys from {list(allowed)}")
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{path}.{k}", d[k],
                              f"one of the keys {list(allowed)}{_underscore_hint(k)}",
                              closest(str(k), allowed))
    for k in required:
        if k not in d:
            raise ConfigError(f"{path}.{k}", None, "a value (required)")
    return dict(d)


_SIZE_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_OP_TEXT = {ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**", ast.MatMult: "@",
            ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<",
            ast.RShift: ">>"}


def _size(path: str, value: Any, names: Mapping[str, int]) -> int:
    """A group size: a whole number > 0, or an expression like ``n_actions * 10 + 1``.

    The expression may use whole numbers, the names (``encoder``, ``n_actions``, ``obs_dim``),
    ``+``, ``-``, ``*`` and parentheses, nothing else (it is parsed, never evaluated as Python).

    Raises:
        ConfigError: one message naming the field, the value, what is allowed (with the names'
            values here) and what in the value is not, with the closest name for a misspelt one.
    """
    known = ", ".join(f"{k} (= {v})" for k, v in sorted(names.items()))
    allowed = (f"a whole number > 0, or an expression of whole numbers and the names {known} "
               "with +, -, * and parentheses")

    def bad(why: str, suggestion: str | None = None) -> ConfigError:
        return ConfigError(path, value, f"{allowed}; {why}", suggestion)

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Constant):
            raise bad(f"{node.value!r} is not a whole number")
        if isinstance(node, ast.Name):
            if node.id not in names:
                hint = closest(node.id, names)
                raise bad(f"{node.id!r} is not one of the names", hint)
            return int(names[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _SIZE_OPS:
            return _SIZE_OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.BinOp):
            raise bad(f"the operator {_OP_TEXT.get(type(node.op), type(node.op).__name__)!r} "
                      "is not allowed")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            x = ev(node.operand)
            return -x if isinstance(node.op, ast.USub) else x
        raise bad(f"{ast.unparse(node)!r} is not a number, a name or + - * of them")

    if isinstance(value, bool):
        raise bad("true/false is not a size")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        raise bad("a size is a whole number" + (f" (write {int(value)})"
                                                if value.is_integer() else ""))
    elif isinstance(value, str):
        try:
            tree = ast.parse(value.strip(), mode="eval")
        except SyntaxError:
            raise bad("it is not a complete expression") from None
        n = ev(tree.body)
    else:
        raise bad(f"a {type(value).__name__} is not a size")
    if n <= 0:
        raise ConfigError(path, value, f"a size > 0 (this is {n} here); {allowed}")
    return int(n)


def _rules_registry() -> Mapping[str, Any]:
    from neurorl.plasticity import RULES

    return RULES


def _rule_names() -> list[str]:
    return list(_rules_registry())


def _check_rule_params(path: str, rule: Any, params: Any) -> None:
    """Each key of a rule's ``params`` is an argument of the rule (named with the closest)."""
    if not isinstance(rule, str) or not isinstance(params, Mapping):
        return  # the rule name / params type are checked where the rule is made
    reg = _rules_registry()
    key = rule if rule in reg else closest(rule, reg)
    if key is None or key.lower() != rule.lower():
        return
    from neurorl.core.network import check_rule_params

    check_rule_params(key, reg[key], params, f"{path}.params", _underscore_hint)


def _rethrow(path: str, e: NeurorlError) -> ConfigError:
    """Re-raise an N-HAL error under the YAML path the user wrote."""
    if isinstance(e, ConfigError):
        field = e.field.split(".", 1)[1] if "." in e.field else e.field
        return ConfigError(f"{path}.{field}", e.value, e.allowed, e.suggestions)
    if isinstance(e, ShapeError):
        return ConfigError(path, e.got, f"shape {e.expected} ({e.what})")
    return ConfigError(path, "?", str(e))


def network_from_config(d: Mapping[str, Any], spec: AgentSpec, *, path: str = "agent.network",
                        substeps: int | None = None) -> AgentNetwork:
    """Build an :class:`AgentNetwork` from its YAML/dict description (see the module docstring).

    Args:
        d: the ``agent.network`` mapping.
        spec: the agent spec (observation bounds, number of actions, substeps).
        path: the YAML path named in errors.

    Returns:
        The (uncompiled) agent network.

    Raises:
        ConfigError: naming ``agent.network.groups.<i>.<key>`` (and so on) for any invalid entry.
    """
    from neurorl.core.network import Connection, LearningRule, Network, NeuronGroup
    from neurorl.encoding import ENCODERS
    from neurorl.errors import lookup

    d = _check_keys(path, d, NETWORK_KEYS, ("groups", "input", "output"))
    enc_d = dict(d.get("encoder") or {"name": "gaussian_rf"})
    enc_d = _check_keys(f"{path}.encoder", enc_d, tuple(enc_d), ("name",))
    name = enc_d.pop("name")
    factory = lookup(ENCODERS, name, "encoder", field=f"{path}.encoder.name")
    k = spec.substeps if substeps is None else substeps
    try:
        if name == "direct":
            enc_d.setdefault("scale", spec.obs_high)
            enc = factory(obs_dim=spec.obs_dim, substeps=k, **enc_d)
        else:
            enc = factory(spec.obs_low, spec.obs_high, substeps=k, **enc_d)
    except TypeError as e:
        raise ConfigError(f"{path}.encoder", enc_d, f"valid arguments of {name} ({e})") from None
    except NeurorlError as e:
        raise _rethrow(f"{path}.encoder", e) from None
    names = {"encoder": enc.n_in, "n_actions": spec.n_actions, "obs_dim": spec.obs_dim}
    groups: dict[str, Any] = {}
    if not isinstance(d["groups"], list) or not d["groups"]:
        raise ConfigError(f"{path}.groups", d["groups"], "a non-empty list of groups")
    for i, g in enumerate(d["groups"]):
        gp = f"{path}.groups.{i}"
        g = _check_keys(gp, g, GROUP_KEYS, ("name", "n"))
        if g["name"] in groups:
            raise ConfigError(f"{gp}.name", g["name"], "a name not used by another group")
        n = _size(f"{gp}.n", g["n"], names)
        params = dict(g.get("params") or {})
        if "surrogate_hyper" in params:
            params["surrogate_hyper"] = tuple(tuple(x) for x in params["surrogate_hyper"])
        g["params"] = params or None
        try:
            groups[g["name"]] = NeuronGroup(
                n, g.get("model", "LIF"), g.get("params"), name=g["name"],
                bias=g.get("bias", 0.0), v_init=g.get("v_init"), sign=g.get("sign"),
                input=g.get("input"))
        except NeurorlError as e:
            raise _rethrow(gp, e) from None
    gnames = list(groups)
    conns: dict[str, Any] = {}
    for i, c in enumerate(d.get("connections") or []):
        cp = f"{path}.connections.{i}"
        c = _check_keys(cp, c, CONNECTION_KEYS, ("source", "target"))
        ends = {}
        for end in ("source", "target"):
            if c[end] not in groups:
                raise ConfigError(f"{cp}.{end}", c[end], f"a group name, one of {gnames}",
                                  closest(str(c[end]), gnames))
            ends[end] = groups[c.pop(end)]
        kw = dict(c)
        if isinstance(kw.get("delay"), list):
            kw["delay"] = tuple(kw["delay"])
        try:
            conn = Connection(ends["source"], ends["target"], **kw)
        except TypeError as e:
            raise ConfigError(cp, c, f"valid Connection arguments ({e})") from None
        except NeurorlError as e:
            raise _rethrow(cp, e) from None
        cname = kw.get("name") or f"{ends['source'].name}->{ends['target'].name}"
        if cname in conns:
            raise ConfigError(f"{cp}.name", cname, "a connection name not used before (give "
                              "parallel connections a name)")
        conn._name = cname
        conns[cname] = conn
    rules_d = d.get("rules") or []
    # (entry, the path the user wrote it at): a string or a mapping is one entry for every
    # connection, so its errors name `rules` / `rules.rule`, not a list index the user never wrote
    if isinstance(rules_d, str):
        entries = [({"connection": n, "rule": rules_d}, f"{path}.rules") for n in conns]
    elif isinstance(rules_d, Mapping):  # {"rule": "eprop", "params": {...}} on every connection
        r0 = _check_keys(f"{path}.rules", rules_d, ("rule", "params"), ("rule",))
        entries = [({"connection": n, **r0}, f"{path}.rules") for n in conns]
    elif isinstance(rules_d, list):
        entries = []
        for i, r in enumerate(rules_d):
            if isinstance(r, str):  # a rule name where a {connection, rule} entry belongs
                name_ = r if r in _rule_names() else (closest(r, _rule_names()) or "RULE")
                raise ConfigError(
                    f"{path}.rules.{i}", r,
                    "a mapping {connection: NAME, rule: RULE} (connections: "
                    f"{list(conns)}); to put {name_} on every connection write "
                    f"`rules: {name_}` without a list")
            entries.append((r, f"{path}.rules.{i}"))
    else:
        raise ConfigError(f"{path}.rules", rules_d, "a rule name for every connection (e.g. "
                          "`rules: eprop`), {rule: RULE, params: {...}} for every connection, "
                          "or a list of {connection: NAME, rule: RULE}")
    rules = []
    for r, rp in entries:
        whole = rp == f"{path}.rules"  # one rule for every connection
        if not whole:
            r = _check_keys(rp, r, RULE_KEYS, ("connection", "rule"))
        if whole and isinstance(rules_d, str):
            lookup(_rules_registry(), r["rule"], "plasticity rule", field=rp)
        _check_rule_params(rp, r.get("rule"), r.get("params"))
        if r["connection"] not in conns:
            raise ConfigError(f"{rp}.connection", r["connection"],
                              f"a connection name, one of {list(conns)}",
                              closest(str(r["connection"]), conns))
        try:
            rules.append(LearningRule(conns[r["connection"]], r["rule"], r.get("params"),
                                      name=r.get("name", r["connection"])))
        except NeurorlError as e:
            raise _rethrow(rp, e) from None
    for key in ("input", "output"):
        if d[key] not in groups:
            raise ConfigError(f"{path}.{key}", d[key], f"a group name, one of {gnames}",
                              closest(str(d[key]), gnames))
    noise = d.get("noise") or {}
    for g, std in dict(noise).items():
        if g not in groups:
            raise ConfigError(f"{path}.noise.{g}", std, f"a group name, one of {gnames}",
                              closest(str(g), gnames))
        if not isinstance(std, (int, float)) or not std >= 0:
            raise ConfigError(f"{path}.noise.{g}", std, "a standard deviation >= 0")
    try:
        net = Network(*groups.values(), *conns.values(), *rules)
        net._validate()
    except NeurorlError as e:
        raise _rethrow(path, e) from None
    spiking = d.get("spiking_input")
    if spiking is None:
        spiking = enc_d.get("mode", "current") != "current" or name == "rate"
    return AgentNetwork(net, enc, input=d["input"], output=d["output"],
                        noise={g: float(s) for g, s in dict(noise).items()},
                        spiking_input=bool(spiking))


__all__ = ["network_from_config"]
