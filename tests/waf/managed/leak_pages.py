"""Response pages for the response phase: leaks the CRS's RESPONSE-95x must catch, and ordinary pages it
must let through. Each is (file name, body); the extension gives the content type (html: text/html, txt:
text/plain, json: application/json, which neither engine inspects by default)."""

from __future__ import annotations

from typing import Final

LEAKS: Final[tuple[tuple[str, bytes], ...]] = (
    (
        "mysql.html",
        b"<html><body><h2>Error</h2><p>You have an error in your SQL syntax; check the manual that corresponds "
        b"to your MySQL server version for the right syntax to use near '' at line 1</p></body></html>",
    ),
    (
        "postgres.html",
        b'<html><body>Warning: pg_query(): Query failed: ERROR:  syntax error at or near "\'" LINE 1: '
        b"SELECT * FROM users WHERE id = ''' in /var/www/app/db.php on line 12</body></html>",
    ),
    ("mssql.html", b"<p>Microsoft OLE DB Provider for ODBC Drivers error '80040e14' Unclosed quotation mark</p>"),
    ("php-source.txt", b"<?php\n$db = new PDO('mysql:host=localhost', 'root', 'secret');\necho $db->query($q);\n?>\n"),
    (
        "php-error.html",
        b"<br />\n<b>Fatal error</b>:  Uncaught Error: Call to undefined function foo() in "
        b"/var/www/html/index.php:3\nStack trace:\n#0 {main}\n  thrown in <b>/var/www/html/index.php</b>",
    ),
    (
        "listing.html",
        b"<html><head><title>Index of /backup</title></head><body><h1>Index of /backup</h1><ul>"
        b'<li><a href="db.sql">db.sql</a></li></ul></body></html>',
    ),
    (
        "java.html",
        b"<html><body><pre>java.lang.NullPointerException\n\tat com.example.Foo.bar(Foo.java:42)\n"
        b"\tat javax.servlet.http.HttpServlet.service(HttpServlet.java:790)\n"
        b"\tat org.apache.catalina.core.ApplicationFilterChain.internalDoFilter(ApplicationFilterChain.java:231)"
        b"</pre></body></html>",
    ),
    ("cgi.txt", b'#!/usr/bin/perl\nuse strict;\nprint "Content-type: text/html\\n\\n";\n'),
    (
        "aspnet.html",
        b"<html><body><h1>Server Error in '/' Application.</h1><h2><i>Runtime Error</i></h2>"
        b"<b>Description:</b> An application error occurred on the server.</body></html>",
    ),
)

BENIGN: Final[tuple[tuple[str, bytes], ...]] = (
    (
        "home.html",
        b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>Acme</h1><p>Fresh bread every "
        b"morning. Opening hours: 8:00-18:00.</p><a href='/menu'>Menu</a></body></html>",
    ),
    (
        "blog.html",
        b"<html><body><article><h1>How we index our database</h1><p>We moved our SQL queries behind an ORM "
        b"and added an index on the orders table; select statements got 40% faster.</p></article></body></html>",
    ),
    ("notes.txt", b"Meeting notes\n- ship the release on Friday\n- review the error budget\n"),
    ("api.json", b'{"status": "ok", "items": [1, 2, 3], "next": null}'),
    (
        "docs.html",
        b"<html><body><h2>Errors</h2><p>The API answers 404 when the item does not exist and 409 when it "
        b"changed meanwhile. Retry with the new version.</p></body></html>",
    ),
)

CONTENT_TYPES: Final = {"html": b"text/html", "txt": b"text/plain", "json": b"application/json"}


def content_type(name: str) -> bytes:
    return CONTENT_TYPES[name.rsplit(".", 1)[1]]
