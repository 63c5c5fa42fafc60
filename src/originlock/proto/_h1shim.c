/* An HTTP/1.1 response or request head that llhttp has validated, split into its fields in one call.
 *
 * Why: httptools hands each field to Python through its own callback (two bytes objects, a Python call, our
 * append), and the objects, not llhttp, are most of what a response head costs the edge (docs/performance.md,
 * "Issue 11, h1head"). proto/http1_response.py's parser defines no on_header/on_status callback when this
 * module is installed: llhttp still checks the head in its strict mode, and when the head is complete this
 * splits the bytes it checked. The usual field names are shared bytes objects (their hash is computed once,
 * which the edge's lookups by name then reuse), and a field line equal to the last one seen with that name
 * (Server, Content-Type, Connection: nginx repeats them on every response) hands out that tuple again:
 * bytes and tuples are immutable, so sharing them is invisible. proto/http1.py's request parser does the same
 * with split_request_head (docs/performance.md, "Issue 11, reqhead"): a browser sends 10-15 fields per request,
 * most of them repeated from its last request (User-Agent, Accept, the Sec-Fetch fields); a visitor's Cookie
 * and Authorization values are never kept past their request.
 *
 * What this is not: a parser. It trusts llhttp's checks (strict mode: CRLF line ends, no CR or LF inside a
 * line, a field name is a token ended by its colon, no obs-fold), and reads only the structure; anything it
 * does not expect gives None, and the caller reads the head through llhttp's callbacks instead.
 * proto/field_lines.py's ``split_head`` and ``split_request_head`` are the same functions in Python (the
 * tests' oracles for these).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* The field names shared between heads, and the last (name, value) tuple seen for each: one table for the
 * origin's responses, one for the visitors' requests. A name at or after `keep_from` never has its tuple
 * kept past the head: its values are per visitor (Set-Cookie) or secrets (Cookie, Authorization). */
#define MAX_NAMES 32
typedef struct {
    const char *const *names;
    int count;
    int keep_from;
    PyObject *objects[MAX_NAMES];
    Py_ssize_t lengths[MAX_NAMES];
    PyObject *last_fields[MAX_NAMES];
    int kinds[MAX_NAMES]; /* framing_name() of each name, so a shared name is not compared again */
} name_table;

static const char *const RESPONSE_NAMES[] = {
    "Server", "Date", "Content-Type", "Content-Length", "Connection", "Transfer-Encoding", "Last-Modified",
    "ETag", "Accept-Ranges", "Cache-Control", "Expires", "Vary", "Keep-Alive", "Content-Encoding", "Location",
    "Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Set-Cookie",
};
/* What browsers and the usual clients send (HTTP/1.1 spells them so). */
static const char *const REQUEST_NAMES[] = {
    "Host", "User-Agent", "Accept", "Accept-Language", "Accept-Encoding", "Connection", "Referer",
    "Cache-Control", "Pragma", "Upgrade-Insecure-Requests", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
    "Sec-Fetch-User", "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "Origin", "Content-Type",
    "Content-Length", "If-None-Match", "If-Modified-Since", "Priority", "DNT", "Cookie", "Authorization",
};
#define COUNT(names) ((int)(sizeof(names) / sizeof(names[0])))
static name_table responses = {RESPONSE_NAMES, COUNT(RESPONSE_NAMES), COUNT(RESPONSE_NAMES) - 1, {0}, {0}, {0}, {0}};
static name_table requests = {REQUEST_NAMES, COUNT(REQUEST_NAMES), COUNT(REQUEST_NAMES) - 2, {0}, {0}, {0}, {0}};

static int
known_name(const name_table *table, const char *name, Py_ssize_t length)
{
    for (int i = 0; i < table->count; i++) {
        if (table->lengths[i] == length && memcmp(table->names[i], name, (size_t)length) == 0)
            return i;
    }
    return -1;
}

/* One field line [line, end), its colon at colon and its value at value, appended to fields (known: the
 * name's index in table, or -1); -1 on a Python error. */
static int
append_field(name_table *table, PyObject *fields, int known, const char *line, const char *colon,
             const char *value, const char *end)
{
    Py_ssize_t value_length = end - value;
    if (known >= 0 && table->last_fields[known] != NULL) {
        PyObject *last_value = PyTuple_GET_ITEM(table->last_fields[known], 1);
        if (PyBytes_GET_SIZE(last_value) == value_length
            && memcmp(PyBytes_AS_STRING(last_value), value, (size_t)value_length) == 0)
            return PyList_Append(fields, table->last_fields[known]);
    }
    PyObject *name;
    if (known >= 0) {
        name = table->objects[known];
        Py_INCREF(name);
    } else {
        name = PyBytes_FromStringAndSize(line, colon - line);
        if (name == NULL)
            return -1;
    }
    PyObject *value_object = PyBytes_FromStringAndSize(value, value_length);
    if (value_object == NULL) {
        Py_DECREF(name);
        return -1;
    }
    PyObject *field = PyTuple_New(2);
    if (field == NULL) {
        Py_DECREF(name);
        Py_DECREF(value_object);
        return -1;
    }
    PyTuple_SET_ITEM(field, 0, name);
    PyTuple_SET_ITEM(field, 1, value_object);
    if (known >= 0 && known < table->keep_from) {
        Py_XSETREF(table->last_fields[known], Py_NewRef(field));
    }
    int failed = PyList_Append(fields, field);
    Py_DECREF(field);
    return failed;
}

/* The arguments (buf: bytes, start: int): sets *line to buf[start:] with the CR and LF before the head skipped
 * (llhttp skips them) and *stop to buf's end. 1; 0 when start is outside buf (the caller returns None); -1
 * with an exception set. */
static int
head_at(const char *usage, PyObject *const *args, Py_ssize_t nargs, const char **base, const char **line,
        const char **stop)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred())
        return -1;
    *base = PyBytes_AS_STRING(args[0]);
    *stop = *base + PyBytes_GET_SIZE(args[0]);
    if (start < 0 || start > *stop - *base)
        return 0;
    const char *at = *base + start;
    while (at < *stop && (*at == '\r' || *at == '\n'))
        at++;
    *line = at;
    return 1;
}

static int notable_name(const char *name, Py_ssize_t length);

/* [at, at + length) is `lower` in any case (lower: lower-case, length its length). */
static int
same_lower(const char *at, Py_ssize_t length, const char *lower)
{
    for (Py_ssize_t k = 0; k < length; k++) {
        if ((at[k] | 0x20) != lower[k])
            return 0;
    }
    return 1;
}

/* The fields that decide a message's framing and whether its connection stays open (llhttp's flags). */
enum { OTHER_NAME, CONNECTION, PROXY_CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING };

static int
framing_name(const char *name, Py_ssize_t length)
{
    switch (length) {
    case 10:
        return same_lower(name, 10, "connection") ? CONNECTION : OTHER_NAME;
    case 14:
        return same_lower(name, 14, "content-length") ? CONTENT_LENGTH : OTHER_NAME;
    case 16:
        return same_lower(name, 16, "proxy-connection") ? PROXY_CONNECTION : OTHER_NAME;
    case 17:
        return same_lower(name, 17, "transfer-encoding") ? TRANSFER_ENCODING : OTHER_NAME;
    }
    return OTHER_NAME;
}

/* What the Connection fields say: none, exactly one whose value is exactly "keep-alive" or "close" (any case),
 * or anything else (llhttp's own token rules then decide: the caller asks it). */
enum { NO_CONNECTION, KEEP_ALIVE, CLOSE, ASK_LLHTTP };

/* The response framing strings (http1_common._framing's answers), made once. */
static PyObject *CHUNKED_STR, *LENGTH_STR, *NONE_STR, *CLOSE_STR;

/* What split_fields saw of the field lines besides the fields: where the head ends, whether every line is
 * "name: value" exactly (one space, the value right after it), the lines' part of the request head size
 * (name and value lengths plus 4 per field, proto/http1.py's count), whether a name the request parser
 * acts on may be among them (see notable_name; only asked for requests), the Connection fields' verdict,
 * the counts of Content-Length and Transfer-Encoding fields (and whether the one Transfer-Encoding is
 * exactly "chunked"), and, for responses, http1_common._framing's answer (borrowed; NULL: "close"). */
typedef struct {
    const char *end;
    int canonical;
    Py_ssize_t size;
    int notable;
    int connection;
    int lengths;
    int codings;
    int chunked;
    PyObject *framing;
} fields_seen;

/* One field that framing_name picked out, taken into `seen`. */
static void
see_field(fields_seen *seen, int which, const char *value, Py_ssize_t length, int want_framing)
{
    if (which == CONNECTION || which == PROXY_CONNECTION) {
        int verdict = ASK_LLHTTP;
        if (which == CONNECTION && seen->connection == NO_CONNECTION) {
            if (length == 10 && (memcmp(value, "keep-alive", 10) == 0 || same_lower(value, 10, "keep-alive")))
                verdict = KEEP_ALIVE;
            else if (length == 5 && same_lower(value, 5, "close"))
                verdict = CLOSE;
        }
        seen->connection = verdict;
        return;
    }
    if (which == CONTENT_LENGTH) {
        seen->lengths++;
        if (want_framing && seen->framing == NULL) {
            /* llhttp keeps the spaces and tabs after the digits (and allows nothing else there) */
            while (length > 0 && (value[length - 1] == ' ' || value[length - 1] == '\t'))
                length--;
            seen->framing = length == 1 && value[0] == '0' ? NONE_STR : LENGTH_STR;
        }
        return;
    }
    seen->codings++;
    seen->chunked = seen->codings == 1 && length == 7 && same_lower(value, 7, "chunked");
    if (want_framing && seen->framing == NULL) {
        for (Py_ssize_t k = 0; k + 7 <= length; k++) {
            if (same_lower(value + k, 7, "chunked")) {
                seen->framing = CHUNKED_STR;
                break;
            }
        }
    }
}

/* The field lines from `line` to the head's empty line, appended to fields: 1; 0 when the bytes are not
 * shaped so (the caller returns None); -1 with an exception set. */
static int
split_fields(name_table *table, PyObject *fields, const char *line, const char *stop, int want_notable,
             int want_framing, fields_seen *seen)
{
    memset(seen, 0, sizeof(*seen));
    seen->canonical = 1;
    for (;;) {
        if (stop - line < 2)
            return 0;
        if (line[0] == '\r') {
            if (line[1] != '\n')
                return 0;
            seen->end = line;
            return 1;
        }
        const char *end = memchr(line, '\r', (size_t)(stop - line));
        if (end == NULL || stop - end < 2 || end[1] != '\n')
            return 0;
        const char *colon = memchr(line, ':', (size_t)(end - line));
        if (colon == NULL || colon == line)
            return 0;
        if (colon + 1 == end || colon[1] != ' ' || (colon + 2 < end && (colon[2] == ' ' || colon[2] == '\t')))
            seen->canonical = 0;
        const char *value = colon + 1;
        while (value < end && (*value == ' ' || *value == '\t'))
            value++;
        int known = known_name(table, line, colon - line);
        if (append_field(table, fields, known, line, colon, value, end) < 0)
            return -1;
        seen->size += (colon - line) + (end - value) + 4;
        if (want_notable && !seen->notable)
            seen->notable = notable_name(line, colon - line);
        int which = known >= 0 ? table->kinds[known] : framing_name(line, colon - line);
        if (which != OTHER_NAME)
            see_field(seen, which, value, end - value, want_framing);
        line = end + 2;
    }
}

/* llhttp_should_keep_alive() for the message, from what the split saw: Py_True or Py_False, or Py_None when
 * only llhttp can tell (another version, another Connection value, a body read until the connection
 * closes; see llhttp's api.c). `no_eof`: the message's end does not depend on the connection's. */
static PyObject *
keeps_alive(const char *version, const fields_seen *seen, int no_eof)
{
    int v11 = memcmp(version, "1.1", 3) == 0;
    if ((!v11 && memcmp(version, "1.0", 3) != 0) || seen->connection == ASK_LLHTTP)
        return Py_None;
    if (v11 ? seen->connection == CLOSE : seen->connection != KEEP_ALIVE)
        return Py_False;
    return no_eof ? Py_True : Py_None;
}

/* split_head(buf: bytes, start: int) -> (fields, reason, raw, end, status, framing, keep_alive) | None
 *
 * buf[start:] holds a response head llhttp has accepted (CR and LF before it are skipped, as llhttp skips
 * them). fields: [(name, value)] as llhttp reports them (the value without the spaces and tabs after the
 * colon, with those at its end); reason: the reason phrase; raw: the field lines as one slice when the
 * status line is "HTTP/x.y DDD reason" and every field line is exactly "name: value" (value not starting with
 * a space or tab, see proto/field_lines.py), else b""; end: the offset just after the head's empty line;
 * status: the status code; framing: http1_common._framing(fields); keep_alive: llhttp_should_keep_alive()
 * as it answers at this head's end, or None when only llhttp can tell.
 */
static PyObject *
split_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const char *base, *line, *stop;
    int at = head_at("split_head(buf: bytes, start: int)", args, nargs, &base, &line, &stop);
    if (at <= 0) {
        if (at < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    /* The status line: "HTTP/" digit "." digit SP 3DIGIT [SP reason] CRLF. */
    const char *end = memchr(line, '\r', (size_t)(stop - line));
    if (end == NULL || stop - end < 2 || end[1] != '\n' || end - line < 12 || memcmp(line, "HTTP/", 5) != 0
        || line[8] != ' ')
        Py_RETURN_NONE;
    int canonical = end - line > 12;
    const char *reason_at = end;
    if (canonical) {
        if (line[12] != ' ')
            Py_RETURN_NONE;
        reason_at = line + 13;
    }
    for (int k = 9; k < 12; k++) {
        if (line[k] < '0' || line[k] > '9')
            Py_RETURN_NONE;
    }
    int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    const char *version = line + 5;
    const char *fields_at = end + 2;
    PyObject *fields = PyList_New(0);
    if (fields == NULL)
        return NULL;
    fields_seen seen;
    int found = split_fields(&responses, fields, fields_at, stop, 0, 1, &seen);
    if (found <= 0) {
        Py_DECREF(fields);
        if (found < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    canonical = canonical && seen.canonical;
    line = seen.end;
    /* llhttp_message_needs_eof() is false (with llhttp's flags: status, F_CHUNKED, F_CONTENT_LENGTH) */
    int no_eof = status / 100 == 1 || status == 204 || status == 304 || (seen.lengths == 1 && seen.codings == 0)
                 || (seen.codings == 1 && seen.chunked && seen.lengths == 0);
    PyObject *reason = PyBytes_FromStringAndSize(reason_at, fields_at - 2 - reason_at);
    PyObject *raw = reason == NULL ? NULL
                                   : PyBytes_FromStringAndSize(canonical ? fields_at : NULL,
                                                               canonical ? line - fields_at : 0);
    PyObject *head_end = raw == NULL ? NULL : PyLong_FromSsize_t(line + 2 - base);
    PyObject *status_object = head_end == NULL ? NULL : PyLong_FromLong(status);
    PyObject *result = status_object == NULL ? NULL : PyTuple_New(7);
    if (result == NULL) {
        Py_XDECREF(reason);
        Py_XDECREF(raw);
        Py_XDECREF(head_end);
        Py_XDECREF(status_object);
        Py_DECREF(fields);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, fields);
    PyTuple_SET_ITEM(result, 1, reason);
    PyTuple_SET_ITEM(result, 2, raw);
    PyTuple_SET_ITEM(result, 3, head_end);
    PyTuple_SET_ITEM(result, 4, status_object);
    PyTuple_SET_ITEM(result, 5, Py_NewRef(seen.framing != NULL ? seen.framing : CLOSE_STR));
    PyTuple_SET_ITEM(result, 6, Py_NewRef(keeps_alive(version, &seen, no_eof)));
    return result;
}

/* Methods and versions handed out as shared objects (the rest are new bytes). */
static struct {
    const char *text;
    PyObject *object;
} shared[] = {
    {"GET", NULL}, {"HEAD", NULL}, {"POST", NULL}, {"PUT", NULL}, {"DELETE", NULL}, {"OPTIONS", NULL},
    {"PATCH", NULL}, {"1.1", NULL}, {"1.0", NULL},
};
#define N_SHARED ((int)(sizeof(shared) / sizeof(shared[0])))

static PyObject *
shared_bytes(const char *at, Py_ssize_t length)
{
    for (int i = 0; i < N_SHARED; i++) {
        if ((Py_ssize_t)strlen(shared[i].text) == length && memcmp(shared[i].text, at, (size_t)length) == 0)
            return Py_NewRef(shared[i].object);
    }
    return PyBytes_FromStringAndSize(at, length);
}

/* The name is one the request parser acts on (proto/http1.py): Expect, Transfer-Encoding or Content-Length
 * in any case, or any name with an underscore (the refused spellings all have one). */
static int
notable_name(const char *name, Py_ssize_t length)
{
    static const char *const acted_on[] = {"expect", "content-length", "transfer-encoding"};
    if (memchr(name, '_', (size_t)length) != NULL)
        return 1;
    for (int i = 0; i < 3; i++) {
        if ((Py_ssize_t)strlen(acted_on[i]) != length)
            continue;
        Py_ssize_t k = 0;
        while (k < length && (name[k] | 0x20) == acted_on[i][k])
            k++;
        if (k == length)
            return 1;
    }
    return 0;
}

/* split_request_head(buf: bytes, start: int) -> (method, url, version, fields, size, end, notable, keep_alive)
 *     | None
 *
 * buf[start:] holds a request head llhttp has accepted (CR and LF before it skipped, as llhttp skips them).
 * method: the request line up to its first space; url: what llhttp's on_url reports (after the spaces that
 * follow the method, up to the next space); version: "x.y" of the line's closing " HTTP/x.y"; fields: as
 * split_head's; size: the field lines' part of the head size (name and value lengths plus 4 per field,
 * proto/http1.py's count); end: the offset just after the head's empty line; notable: a field the parser
 * acts on may be among them (see notable_name); keep_alive: llhttp_should_keep_alive() at this head's end,
 * or None when only llhttp can tell. None when the bytes are not shaped so (HTTP/0.9, say): the parser
 * then reads the head through llhttp's callbacks.
 */
static PyObject *
split_request_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const char *base, *line, *stop;
    int at = head_at("split_request_head(buf: bytes, start: int)", args, nargs, &base, &line, &stop);
    if (at <= 0) {
        if (at < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    /* The request line: method SP+ url SP+ "HTTP/" digit "." digit CRLF (llhttp allows more than one space
     * around the URL, and none inside it). */
    const char *end = memchr(line, '\r', (size_t)(stop - line));
    if (end == NULL || stop - end < 2 || end[1] != '\n')
        Py_RETURN_NONE;
    const char *space = memchr(line, ' ', (size_t)(end - line));
    if (space == NULL || space == line || end - space < 11 || memcmp(end - 9, " HTTP/", 6) != 0 || end[-2] != '.')
        Py_RETURN_NONE;
    const char *url_at = space;
    while (*url_at == ' ')
        url_at++;
    const char *url_end = memchr(url_at, ' ', (size_t)(end - url_at));
    if (url_end == NULL)  /* only spaces before "HTTP/": llhttp refuses that line */
        Py_RETURN_NONE;
    const char *line_at = line;
    const char *version_at = end - 3;
    PyObject *fields = PyList_New(0);
    if (fields == NULL)
        return NULL;
    fields_seen seen;
    int found = split_fields(&requests, fields, end + 2, stop, 1, 0, &seen);
    if (found <= 0) {
        Py_DECREF(fields);
        if (found < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    line = seen.end;
    PyObject *method = shared_bytes(line_at, space - line_at);
    PyObject *url = method == NULL ? NULL : PyBytes_FromStringAndSize(url_at, url_end - url_at);
    PyObject *version = url == NULL ? NULL : shared_bytes(version_at, 3);
    PyObject *head_end = version == NULL ? NULL : PyLong_FromSsize_t(line + 2 - base);
    PyObject *size_object = head_end == NULL ? NULL : PyLong_FromSsize_t(seen.size);
    PyObject *result = size_object == NULL ? NULL : PyTuple_New(8);
    if (result == NULL) {
        Py_XDECREF(method);
        Py_XDECREF(url);
        Py_XDECREF(version);
        Py_XDECREF(head_end);
        Py_XDECREF(size_object);
        Py_DECREF(fields);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, method);
    PyTuple_SET_ITEM(result, 1, url);
    PyTuple_SET_ITEM(result, 2, version);
    PyTuple_SET_ITEM(result, 3, fields);
    PyTuple_SET_ITEM(result, 4, size_object);
    PyTuple_SET_ITEM(result, 5, head_end);
    PyTuple_SET_ITEM(result, 6, Py_NewRef(seen.notable ? Py_True : Py_False));
    /* a request's end never depends on the connection's (llhttp_message_needs_eof) */
    PyTuple_SET_ITEM(result, 7, Py_NewRef(keeps_alive(version_at, &seen, 1)));
    return result;
}

static PyMethodDef methods[] = {
    {"split_head", (PyCFunction)(void (*)(void))split_head, METH_FASTCALL,
     "split_head(buf, start) -> (fields, reason, raw, end, status, framing, keep_alive) | None: a validated "
     "response head's fields."},
    {"split_request_head", (PyCFunction)(void (*)(void))split_request_head, METH_FASTCALL,
     "split_request_head(buf, start) -> (method, url, version, fields, size, end, notable, keep_alive) | None: "
     "a request head's."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_h1shim", "An llhttp-validated HTTP/1.1 head split in one call.", 0, methods,
    NULL, NULL, NULL, NULL,
};

static int
init_table(name_table *table)
{
    for (int i = 0; i < table->count; i++) {
        if (table->objects[i] == NULL) {
            table->objects[i] = PyBytes_FromString(table->names[i]);
            if (table->objects[i] == NULL)
                return -1;
            table->lengths[i] = (Py_ssize_t)strlen(table->names[i]);
            table->kinds[i] = framing_name(table->names[i], table->lengths[i]);
        }
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__h1shim(void)
{
    if (init_table(&responses) < 0 || init_table(&requests) < 0)
        return NULL;
    if (CHUNKED_STR == NULL) {
        CHUNKED_STR = PyUnicode_InternFromString("chunked");
        LENGTH_STR = PyUnicode_InternFromString("length");
        NONE_STR = PyUnicode_InternFromString("none");
        CLOSE_STR = PyUnicode_InternFromString("close");
        if (CHUNKED_STR == NULL || LENGTH_STR == NULL || NONE_STR == NULL || CLOSE_STR == NULL)
            return NULL;
    }
    for (int i = 0; i < N_SHARED; i++) {
        if (shared[i].object == NULL) {
            shared[i].object = PyBytes_FromString(shared[i].text);
            if (shared[i].object == NULL)
                return NULL;
        }
    }
    return PyModule_Create(&module);
}
