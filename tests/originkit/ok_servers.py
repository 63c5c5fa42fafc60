"""Run real nginx and Apache processes in a temp dir with a given server block (test helper)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from okhelpers import stop, wait_port

from originlock.testing.require import require_executable

APACHE_MODULES = "/usr/lib/apache2/modules"


def _user_line(kind: str) -> str:
    # As root, nginx/apache drop to an unprivileged user for workers; stay root so temp files are readable.
    if os.geteuid() != 0:
        return ""
    return "user root;\n" if kind == "nginx" else ""


@contextmanager
def nginx(tmp: Path, server_blocks: str, ports: list[int]) -> Iterator[Path]:
    """nginx in the foreground serving ``server_blocks``; yields its prefix dir. Every process is killed."""
    binary = require_executable("nginx")
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.chmod(0o755)
    (tmp / "html").mkdir(exist_ok=True)
    (tmp / "html" / "index.html").write_text("origin says hello\n")
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(exist_ok=True)
    log = tmp / "error.log"
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"{_user_line('nginx')}worker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {log} info;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"  access_log {tmp}/access.log;\n"
        f"  client_body_temp_path {tmp}/client_body; proxy_temp_path {tmp}/proxy;\n"
        f"  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;\n"
        f"  root {tmp}/html;\n"
        f"{server_blocks}\n"
        "}\n"
    )
    console = (tmp / "console.log").open("wb")
    proc = subprocess.Popen(
        [binary, "-p", str(tmp), "-c", str(conf), "-e", str(log), "-g", "daemon off;"],
        stdout=console,
        stderr=subprocess.STDOUT,
    )
    try:
        for port in ports:
            wait_port(port, proc, log, tmp / "console.log")
        yield tmp
    finally:
        stop(proc)
        console.close()


@contextmanager
def apache(tmp: Path, vhosts: str, ports: list[int]) -> Iterator[Path]:
    """Apache httpd (Debian build) with our own config, ``-DFOREGROUND``; yields its dir."""
    binary = require_executable("apache2")
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.chmod(0o755)
    # Apache refuses to serve as root, and its workers (another user) cannot enter pytest's 0700 temp
    # root: give them a world-readable document root of their own.
    htdocs = Path(tempfile.mkdtemp(prefix="originlock-apache-"))
    htdocs.chmod(0o755)
    (htdocs / "index.html").write_text("origin says hello\n")
    (htdocs / "index.html").chmod(0o644)
    log = tmp / "error.log"
    modules = ["mpm_event", "authz_core", "ssl", "socache_shmcb", "mime", "dir", "headers"]
    loads = "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n" for m in modules)
    listens = "".join(f"Listen 127.0.0.1:{p}\n" for p in ports)
    conf = tmp / "httpd.conf"
    conf.write_text(
        f"ServerRoot {tmp}\nServerName localhost\nPidFile {tmp}/httpd.pid\nErrorLog {log}\nLogLevel info\n"
        f"Mutex file:{tmp} default\nDefaultRuntimeDir {tmp}\n{loads}"
        f"SSLSessionCache shmcb:{tmp}/ssl_scache(51200)\n"
        f"DocumentRoot {htdocs}\n<Directory {htdocs}>\n  Require all granted\n</Directory>\n"
        f"DirectoryIndex index.html\nTypesConfig {os.devnull}\n"
        f"{listens}{vhosts}\n"
    )
    env = {**os.environ, "APACHE_RUN_DIR": str(tmp), "APACHE_LOCK_DIR": str(tmp), "APACHE_LOG_DIR": str(tmp)}
    console = (tmp / "console.log").open("wb")
    proc = subprocess.Popen(
        [binary, "-f", str(conf), "-DFOREGROUND"], env=env, stdout=console, stderr=subprocess.STDOUT
    )
    try:
        for port in ports:
            wait_port(port, proc, log, tmp / "console.log")
        yield tmp
    finally:
        stop(proc)
        console.close()
        shutil.rmtree(htdocs, ignore_errors=True)
