"""nginx with ModSecurity v3 loading the same CRS as originlock: the WAF peer for tests and benchmarks.

:class:`ModSecurityNginx` writes a prefix (``nginx.conf``, the ModSecurity configuration) and runs nginx in
the foreground on an ephemeral port with one worker. The ModSecurity configuration is the recommended one
(``modsecurity.conf-recommended``: body access, the XML/JSON body processors chosen by rules 200000/200001,
128 KB of body without files, processed partially beyond it like originlock's inspection limit) without the
response phase (``response=True`` adds it with the recommended response settings and ``RESPONSE-*.conf``),
then the CRS setup (``SecDefaultAction`` ``log,auditlog,pass`` and the TX settings of
:class:`~originlock.waf.managed.EngineConfig`: paranoia level, threshold, argument limits) and the rule
files originlock ships (``waf/managed/crs/REQUEST-*.conf``: the same bytes, the same data files).

With ``audit=True`` every transaction is written to a JSON audit log (parts A, B, H): the request headers
(so a caller's correlation header ties a record to its request) and the rules that matched. The site
serves one static file: ModSecurity runs phases 1 and 2 before nginx answers (``return`` would answer
in the rewrite phase, before ModSecurity has read the body). ``underscores_in_headers on`` and
``ignore_invalid_headers off``: by default nginx drops headers named like ``X_Filename`` or ``X.Filename``
before ModSecurity sees them, while originlock's edge passes them to the WAF.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from originlock.testing.nginx import free_port, wait_for_port
from originlock.waf.managed import EngineConfig
from originlock.waf.managed.loader import CRS_DIR

__all__ = ["MODULE", "ModSecurityNginx", "audit_rule_ids", "module_available"]

MODULE = Path("/usr/lib/nginx/modules/ngx_http_modsecurity_module.so")
_UNICODE_MAPS = (Path("/etc/nginx/unicode.mapping"), Path("/usr/share/nginx/docs/modsecurity/unicode.mapping"))


def module_available() -> bool:
    return MODULE.is_file()


_RESPONSE_ON = [
    "SecResponseBodyAccess On",
    "SecResponseBodyMimeType text/plain text/html text/xml",
    "SecResponseBodyLimit 524288",
    "SecResponseBodyLimitAction ProcessPartial",
]


def _setvars(config: EngineConfig) -> str:
    values = config.seed()
    values.pop("crs_setup_version", None)
    return ",".join(f"setvar:tx.{name}={value.decode('latin-1')}" for name, value in values.items())


def modsecurity_conf(
    prefix: Path, config: EngineConfig, *, detection_only: bool, audit: bool, response: bool = False
) -> str:
    unicode_map = next((p for p in _UNICODE_MAPS if p.is_file()), None)
    lines = [
        f"SecRuleEngine {'DetectionOnly' if detection_only else 'On'}",
        "SecRequestBodyAccess On",
        'SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\\+|/)|text/)xml" '
        '"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"',
        'SecRule REQUEST_HEADERS:Content-Type "^application/json" '
        '"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"',
        "SecRequestBodyLimit 13107200",
        "SecRequestBodyNoFilesLimit 131072",
        "SecRequestBodyLimitAction ProcessPartial",
        "SecRequestBodyJsonDepthLimit 512",
        "SecPcreMatchLimit 1000",
        "SecPcreMatchLimitRecursion 1000",
        # The response phase: modsecurity.conf-recommended's settings (the edge's defaults are the same).
        *(_RESPONSE_ON if response else ["SecResponseBodyAccess Off"]),
        f"SecTmpDir {prefix}/tmp",
        f"SecDataDir {prefix}/tmp",
        "SecArgumentSeparator &",
        "SecCookieFormat 0",
        "SecStatusEngine Off",
    ]
    if unicode_map is not None:
        lines.append(f"SecUnicodeMapFile {unicode_map} 20127")
    if audit:
        lines += [
            "SecAuditEngine On",
            "SecAuditLogFormat JSON",
            "SecAuditLogType Serial",
            "SecAuditLogParts ABHZ",
            f"SecAuditLog {prefix}/audit.log",
        ]
    else:
        lines.append("SecAuditEngine Off")
    lines += [
        'SecDefaultAction "phase:1,log,auditlog,pass"',
        'SecDefaultAction "phase:2,log,auditlog,pass"',
        *(
            ['SecDefaultAction "phase:3,log,auditlog,pass"', 'SecDefaultAction "phase:4,log,auditlog,pass"']
            if response
            else []
        ),
        'SecAction "id:900990,phase:1,pass,t:none,nolog,setvar:tx.crs_setup_version=4280"',
        f'SecAction "id:900000,phase:1,pass,t:none,nolog,{_setvars(config)}"',
        f"Include {CRS_DIR}/REQUEST-*.conf",
        *([f"Include {CRS_DIR}/RESPONSE-*.conf"] if response else []),
    ]
    return "\n".join(lines) + "\n"


class ModSecurityNginx:
    """``ModSecurityNginx(prefix, config).start()``; :meth:`stop` terminates nginx (kills it if needed).

    ``modsecurity=False`` runs the same nginx and site without the module's ``modsecurity on``: the
    baseline a benchmark subtracts to get ModSecurity's own CPU per request."""

    def __init__(
        self,
        prefix: Path,
        config: EngineConfig,
        *,
        detection_only: bool = True,
        audit: bool = True,
        modsecurity: bool = True,
        binary: str = "nginx",
        response: bool = False,
    ) -> None:
        self.prefix = prefix
        self.config = config
        self.detection_only = detection_only
        self.audit = audit
        self.modsecurity = modsecurity
        self.binary = binary
        #: Load RESPONSE-95x and inspect response bodies (``www/`` files, typed by extension).
        self.response = response
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def audit_log(self) -> Path:
        return self.prefix / "audit.log"

    def start(self) -> ModSecurityNginx:
        prefix = self.prefix
        for sub in ("logs", "tmp", "www"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        (prefix / "www" / "index.html").write_text("ok\n")
        (prefix / "modsecurity.conf").write_text(
            modsecurity_conf(
                prefix, self.config, detection_only=self.detection_only, audit=self.audit, response=self.response
            )
        )
        self.port = free_port()
        waf = f"modsecurity on;\n    modsecurity_rules_file {prefix}/modsecurity.conf;\n" if self.modsecurity else ""
        user = "user root;\n" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            f"load_module {MODULE};\n{user}worker_processes 1;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/logs/error.log warn;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {prefix}/tmp;\n  client_max_body_size 10m;\n"
            f"  keepalive_requests 1000000;\n  default_type text/plain;\n"
            "  types { text/html html; text/xml xml; application/json json; }\n"
            "  underscores_in_headers on;\n  ignore_invalid_headers off;\n"
            f"  server {{\n    listen 127.0.0.1:{self.port};\n    {waf}    root {prefix}/www;\n"
            "    location / { }\n  }\n}\n"
        )
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, timeout=30.0)  # loading the CRS takes a second or two
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"nginx with ModSecurity did not start: {self.error_log()}") from None
        return self

    def error_log(self) -> str:
        path = self.prefix / "logs" / "error.log"
        return path.read_text() if path.exists() else ""

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def audit_records(self) -> list[dict[str, Any]]:
        """Each audited transaction (JSON audit log, one document per line)."""
        if not self.audit_log.exists():
            return []
        records = []
        for line in self.audit_log.read_text("utf-8", "replace").splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    records.append(json.loads(line)["transaction"])
                except (ValueError, KeyError):
                    continue
        return records

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> ModSecurityNginx:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def audit_rule_ids(record: dict[str, Any]) -> set[int]:
    """The ids of the rules that matched (and log) in one audit record."""
    ids: set[int] = set()
    for message in record.get("messages") or ():
        rule_id = str((message.get("details") or {}).get("ruleId", ""))
        if rule_id.isdigit():
            ids.add(int(rule_id))
    return ids
