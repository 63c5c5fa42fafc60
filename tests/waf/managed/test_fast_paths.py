"""The engine's shortcuts give the results of the plain evaluation they replace.

- ``transforms.TRIGGERS``: a value without any feature a transformation reacts to comes out unchanged
  (the engine then skips the chain for it);
- the regex-based ``urlDecode``/``urlDecodeUni`` decode like a byte-by-byte reading of the escapes;
- the prefilters (RE2-set hits of a target's values before exclusions, the TX shortcut) change no
  outcome: every rule evaluated without them matches the same requests.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from originlock.waf.managed import EngineConfig, HttpRequest, load_engine
from originlock.waf.managed.config import DEFAULT_TX
from originlock.waf.managed.engine import Engine
from originlock.waf.managed.transaction import Transaction
from originlock.waf.managed.transforms import ALWAYS, TRANSFORMS, TRIGGERS, features, url_decode, url_decode_uni

# Octets every transformation reacts to, and plain text around them.
_OCTETS = st.sampled_from(list(b"aZ09 %+&\\/*-#,;\"'^\x00\t\n\xa0\xc3\xa9uUxX<>=()._"))
_VALUES = st.lists(_OCTETS, max_size=16).map(bytes)


@settings(max_examples=3000, deadline=None)
@given(_VALUES)
def test_a_value_without_a_trigger_is_left_unchanged(value: bytes) -> None:
    found = features(value)
    for name, transform in TRANSFORMS.items():
        if not found & TRIGGERS.get(name, ALWAYS):
            assert transform(value) == value, name


def _decode_reference(data: bytes, unicode: bool) -> bytes:
    out = bytearray()
    hexa = b"0123456789abcdefABCDEF"
    i = 0
    while i < len(data):
        c = data[i]
        if c == 0x25:
            if (
                unicode
                and data[i + 1 : i + 2] in (b"u", b"U")
                and len(data) >= i + 6
                and all(x in hexa for x in data[i + 2 : i + 6])
            ):
                code = int(data[i + 2 : i + 6], 16)
                out.append((code - 0xFF00 + 0x20) & 0xFF if 0xFF01 <= code <= 0xFF5E else code & 0xFF)
                i += 6
                continue
            if len(data) >= i + 3 and all(x in hexa for x in data[i + 1 : i + 3]):
                out.append(int(data[i + 1 : i + 3], 16))
                i += 3
                continue
        out.append(0x20 if c == 0x2B else c)
        i += 1
    return bytes(out)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(list(b"%uU0123456789abcdefABCDEFgG+ x")), max_size=16).map(bytes))
def test_url_decoding_reads_each_escape_once(value: bytes) -> None:
    assert url_decode(value) == _decode_reference(value, unicode=False)
    assert url_decode_uni(value) == _decode_reference(value, unicode=True)


class _Plain(Engine):
    """The engine without its prefilters: every rule reads its own targets and tests each value."""

    def run(self, t: Transaction, config: EngineConfig, phases: tuple[int, ...]):  # type: ignore[no-untyped-def]
        t.target_hits = _Never()  # type: ignore[assignment]
        return super().run(t, config, phases)

    def _may_match(self, link, operator, t):  # type: ignore[no-untyped-def]
        return True


class _Never(dict):  # type: ignore[type-arg]
    """A hits cache that always says "may match"."""

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        return None


_REQUESTS = [
    HttpRequest(
        b"GET", b"/?q=%3Cscript%3Ealert(1)%3C/script%3E&id=1%27%20or%20%271%27=%271", headers=((b"Host", b"a"),)
    ),
    HttpRequest(b"GET", b"/../../etc/passwd", headers=((b"Host", b"a"), (b"User-Agent", b"sqlmap/1.7"))),
    HttpRequest(
        b"POST",
        b"/f",
        headers=((b"Host", b"a"), (b"Content-Type", b"application/x-www-form-urlencoded")),
        body=b"a=%24%28whoami%29&b=ordinary+text&c=java.lang.Runtime&d=_%24%24ND_FUNC%24%24_",
    ),
    HttpRequest(
        b"POST",
        b"/j",
        headers=((b"Host", b"a"), (b"Content-Type", b"application/json")),
        body=b'{"x": "<img src=x onerror=alert(1)>", "y": "${jndi:ldap://e/a}", "z": "Plain words."}',
    ),
    HttpRequest(b"GET", b"/p?file=Li4vLi4vZXRjL3Bhc3N3ZA==&u=http://evil.example/x.txt?", headers=((b"Host", b"a"),)),
]


def test_prefilters_change_no_outcome() -> None:
    fast = load_engine()
    plain = _Plain(fast.rules)
    plain.rx_set = fast.rx_set  # the regexes' places in the set are the shared engine's
    for paranoia in (1, 4):
        config = EngineConfig(paranoia_level=paranoia, threshold=5, actions=((949110, "log"),), tx=DEFAULT_TX)
        for request in _REQUESTS:
            expected = [(m.rule_id, m.score) for m in plain.evaluate(request, config).matches]
            assert [(m.rule_id, m.score) for m in fast.evaluate(request, config).matches] == expected
            assert len(expected) > 1 or paranoia == 1
