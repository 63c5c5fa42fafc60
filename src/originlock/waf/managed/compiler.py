"""SecLang directives -> the engine's rules: targets, transformations and operator compiled once.

Theory of operation. ``compile_rules`` walks the directives of every file in order. A ``SecRule`` or
``SecAction`` becomes a :class:`SecRule` whose targets, transformation chain, operator and
``setvar`` templates are compiled here (RE2 regexes, Aho-Corasick automata, macro templates); a rule
with ``chain`` takes the next ``SecRule`` as its ``chain`` link. ``SecMarker`` becomes a position in
each phase's step list (``skipAfter`` jumps there). ``SecRuleUpdateTargetById`` adds its exclusions
to the rule once everything is read. CRS's default action list (``SecDefaultAction``:
``log,auditlog,pass``) applies: a rule logs unless it says ``nolog``; ``block`` means "pass and
score", as in anomaly-scoring mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .operators import Operator, compile_operator
from .seclang import Directive, SecLangError, parse_actions
from .transforms import ALWAYS, TRANSFORMS, TRIGGERS, Transform
from .variables import Target, Targets, parse_targets

__all__ = ["PHASES", "CompiledRules", "Macro", "SecRule", "SetVar", "compile_rules"]

PHASES = (1, 2, 3, 4)
"""ModSecurity's phases this engine evaluates: request headers, request body, response headers, response
body. Markers are placed in each (``skipAfter`` jumps within the phase it runs in, as in ModSecurity)."""

_MACRO = re.compile(r"%\{([^}]+)\}")


@dataclass(frozen=True, slots=True)
class Macro:
    """A string with ``%{VAR}`` references: literal parts and variable names, alternating."""

    parts: tuple[str, ...]

    @staticmethod
    def parse(text: str) -> Macro:
        return Macro(tuple(_MACRO.split(text)))

    @property
    def constant(self) -> bool:
        return len(self.parts) == 1


@dataclass(frozen=True, slots=True)
class SetVar:
    name: Macro
    """Variable name without ``tx.``, lower-cased when constant."""
    op: str
    """``=``, ``+``, ``-`` or ``!`` (delete)."""
    value: Macro


@dataclass(slots=True)
class SecRule:
    id: int
    phase: int
    targets: Targets | None
    operator: Operator | None
    transforms: tuple[Transform, ...] = ()
    transform_key: str = ""
    transform_names: tuple[str, ...] = ()
    transform_triggers: int = 0
    tx_key: str = ""
    tx_name: str = ""
    """For a link reading one TX variable without transformations (set by the engine): its key."""
    rx_index: int = -1
    rx_keys: tuple[tuple[Target, tuple[str, str, bool]], ...] = ()
    """For a rule whose first link is a static @rx (set by the engine): its place in the RE2 set and the
    per-request keys of its targets' hits, so that a rule no value can match costs a few lookups."""
    """The features of a value (``transforms.features``) without which the chain leaves it unchanged."""
    chain: SecRule | None = None
    setvars: tuple[SetVar, ...] = ()
    setvars_per_match: bool = False
    """A rule whose variable names are built from the match (``tx.x_%{tx.counter}``) collects one value
    per matched target: its setvars run for each match, as in ModSecurity. The others (anomaly scores)
    run once per rule, so a rule adds its score once however many arguments it matched."""
    ctls: tuple[tuple[str, str], ...] = ()
    capture: bool = False
    multimatch: bool = False
    skip_after: str = ""
    disruptive: str = "pass"
    log: bool = True
    msg: str = ""
    tags: tuple[str, ...] = ()
    severity: str = ""
    paranoia: int = 1
    line: int = 0
    source: str = ""

    def links(self) -> Iterable[SecRule]:
        rule: SecRule | None = self
        while rule is not None:
            yield rule
            rule = rule.chain


Step = SecRule | str
"""A rule, or a marker name (``SecMarker``)."""


@dataclass
class CompiledRules:
    phases: dict[int, list[Step]] = field(default_factory=dict)
    markers: dict[int, dict[str, int]] = field(default_factory=dict)
    """Per phase: marker name -> index of the step after it."""
    by_id: dict[int, SecRule] = field(default_factory=dict)

    def rules(self) -> list[SecRule]:
        return [step for steps in self.phases.values() for step in steps if isinstance(step, SecRule)]


_DISRUPTIVE = frozenset({"pass", "block", "deny", "drop", "allow"})
_IGNORED = frozenset({"ver", "auditlog", "noauditlog", "logdata", "status", "initcol", "expirevar", "tag_"})


def _setvar(text: str) -> SetVar:
    if text.startswith("!"):
        name, op, value = text[1:], "!", ""
    else:
        name, sep, value = text.partition("=")
        op = "="
        if sep and value[:1] in ("+", "-"):
            op, value = value[0], value[1:]
        elif not sep:
            value = "1"
    collection, _, key = name.partition(".")
    if collection.lower() != "tx":
        raise SecLangError(f"setvar on {collection!r}: only TX is supported")
    macro = Macro.parse(key)
    if macro.constant:
        macro = Macro((key.lower(),))
    return SetVar(macro, op, Macro.parse(value))


def _build(directive: Directive, data_dir: Path) -> SecRule:
    if directive.name == "SecAction":
        targets_text, operator_text, actions_text = "", "", directive.args[0] if directive.args else ""
    else:
        if len(directive.args) < 2:
            raise SecLangError(f"{directive.source}:{directive.line}: SecRule needs targets and an operator")
        targets_text, operator_text = directive.args[0], directive.args[1]
        actions_text = directive.args[2] if len(directive.args) > 2 else ""
    rule = SecRule(
        id=0,
        phase=2,
        targets=parse_targets(targets_text) if targets_text else None,
        operator=compile_operator(operator_text, data_dir) if operator_text else None,
        line=directive.line,
        source=directive.source,
    )
    transforms: list[Transform] = []
    names: list[str] = []
    setvars: list[SetVar] = []
    ctls: list[tuple[str, str]] = []
    tags: list[str] = []
    for name, value in parse_actions(actions_text):
        if name == "id":
            rule.id = int(value)
        elif name == "phase":
            rule.phase = {"request": 2, "response": 4, "logging": 5}.get(value, 0) or int(value)
        elif name == "t":
            key = value.lower()
            if key == "none":
                transforms, names = [], []
            elif key in TRANSFORMS:
                transforms.append(TRANSFORMS[key])
                names.append(key)
            else:
                raise SecLangError(f"{directive.source}:{directive.line}: unsupported transformation t:{value}")
        elif name == "setvar":
            setvars.append(_setvar(value))
        elif name == "ctl":
            option, _, argument = value.partition("=")
            ctls.append((option.lower(), argument))
        elif name == "tag":
            tags.append(value)
        elif name in _DISRUPTIVE:
            rule.disruptive = name
        elif name == "chain":
            rule.chain = rule  # placeholder: the next SecRule replaces it
        elif name == "capture":
            rule.capture = True
        elif name == "multimatch":
            rule.multimatch = True
        elif name == "skipafter":
            rule.skip_after = value
        elif name == "nolog":
            rule.log = False
        elif name == "log":
            rule.log = True
        elif name == "msg":
            rule.msg = value
        elif name == "severity":
            rule.severity = value
    rule.transforms = tuple(transforms)
    rule.transform_key = ",".join(names)
    rule.transform_names = tuple(names)
    for transform_name in names:
        rule.transform_triggers |= TRIGGERS.get(transform_name, ALWAYS)
    rule.setvars = tuple(setvars)
    rule.setvars_per_match = any(not setvar.name.constant for setvar in setvars)
    rule.ctls = tuple(ctls)
    rule.tags = tuple(tags)
    for tag in tags:
        if tag.startswith("paranoia-level/"):
            rule.paranoia = int(tag.rsplit("/", 1)[1])
    return rule


def compile_rules(files: Iterable[tuple[str, str]], data_dir: Path) -> CompiledRules:
    """Compile the directives of ``files`` ((name, text) in load order).

    Raises:
        SecLangError, OperatorError, TargetError: a directive this engine cannot run, with its place.
    """
    from .seclang import parse_directives  # local: keeps the import graph flat for readers

    compiled = CompiledRules()
    updates: list[tuple[int, str]] = []
    pending: SecRule | None = None  # the last link of an open chain
    for source, text in files:
        for directive in parse_directives(text, source):
            if directive.name == "SecComponentSignature":
                continue
            if directive.name == "SecRuleUpdateTargetById":
                updates.append((int(directive.args[0]), directive.args[1]))
                continue
            if directive.name == "SecMarker":
                if pending is not None:
                    raise SecLangError(f"{source}:{directive.line}: marker inside a chain")
                for phase in PHASES:
                    compiled.phases.setdefault(phase, []).append(directive.args[0])
                continue
            rule = _build(directive, data_dir)
            if pending is not None:
                pending.chain = rule
                pending = rule if rule.chain is rule else None
                if pending is not None:
                    rule.chain = None
                continue
            if rule.chain is rule:
                rule.chain = None
                pending = rule
            if rule.phase not in PHASES:
                continue  # phase 5 (logging: the 980 reporting rules) is not evaluated (docs/waf.md)
            compiled.phases.setdefault(rule.phase, []).append(rule)
            compiled.by_id[rule.id] = rule
    for rule_id, text in updates:
        updated = compiled.by_id.get(rule_id)
        if updated is None or updated.targets is None:
            continue
        extra = parse_targets(text)
        for collection, selectors in extra.excluded.items():
            for selector in selectors:
                updated.targets.exclude(collection, selector, f"{collection}:{selector.text}")
    for phase, steps in compiled.phases.items():
        compiled.markers[phase] = {step: i + 1 for i, step in enumerate(steps) if isinstance(step, str)}
    return compiled
