/* An HTTP/1.1 response head that llhttp has validated, split into its fields in one call.
 *
 * Why: httptools hands each field to Python through its own callback (two bytes objects, a Python call, our
 * append), and the objects, not llhttp, are most of what a response head costs the edge (docs/performance.md,
 * "Issue 11, h1head"). proto/http1_response.py's parser defines no on_header/on_status callback when this
 * module is installed: llhttp still checks the head in its strict mode, and when the head is complete this
 * splits the bytes it checked. The usual field names are shared bytes objects (their hash is computed once,
 * which the edge's lookups by name then reuse), and a field line equal to the last one seen with that name
 * (Server, Content-Type, Connection: nginx repeats them on every response) hands out that tuple again:
 * bytes and tuples are immutable, so sharing them is invisible.
 *
 * What this is not: a parser. It trusts llhttp's checks (strict mode: CRLF line ends, no CR or LF inside a
 * line, a field name is a token ended by its colon, no obs-fold), and reads only the structure; anything it
 * does not expect gives None, and the caller reads the head through llhttp's callbacks instead.
 * proto/field_lines.py's ``split_head`` is the same function in Python (the tests' oracle for this one).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* The field names shared between responses, and the last (name, value) tuple seen for each. */
static const char *const NAMES[] = {
    "Server", "Date", "Content-Type", "Content-Length", "Connection", "Transfer-Encoding", "Last-Modified",
    "ETag", "Accept-Ranges", "Cache-Control", "Expires", "Vary", "Keep-Alive", "Content-Encoding", "Location",
    "Set-Cookie", "Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options",
};
#define N_NAMES ((int)(sizeof(NAMES) / sizeof(NAMES[0])))
static PyObject *name_objects[N_NAMES];
static Py_ssize_t name_lengths[N_NAMES];
static PyObject *last_fields[N_NAMES];
/* Set-Cookie's values are per visitor: never kept past the response (index in NAMES). */
#define SET_COOKIE 15

static int
known_name(const char *name, Py_ssize_t length)
{
    for (int i = 0; i < N_NAMES; i++) {
        if (name_lengths[i] == length && memcmp(NAMES[i], name, (size_t)length) == 0)
            return i;
    }
    return -1;
}

/* One field line [line, end) with its colon at colon, appended to fields; -1 on a Python error. */
static int
append_field(PyObject *fields, const char *line, const char *colon, const char *end)
{
    const char *value = colon + 1;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    Py_ssize_t value_length = end - value;
    int known = known_name(line, colon - line);
    if (known >= 0 && last_fields[known] != NULL) {
        PyObject *last_value = PyTuple_GET_ITEM(last_fields[known], 1);
        if (PyBytes_GET_SIZE(last_value) == value_length
            && memcmp(PyBytes_AS_STRING(last_value), value, (size_t)value_length) == 0)
            return PyList_Append(fields, last_fields[known]);
    }
    PyObject *name;
    if (known >= 0) {
        name = name_objects[known];
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
    if (known >= 0 && known != SET_COOKIE) {
        Py_XSETREF(last_fields[known], Py_NewRef(field));
    }
    int failed = PyList_Append(fields, field);
    Py_DECREF(field);
    return failed;
}

/* split_head(buf: bytes, start: int) -> (fields, reason, raw, end) | None
 *
 * buf[start:] holds a response head llhttp has accepted (CR and LF before it are skipped, as llhttp skips
 * them). fields: [(name, value)] as llhttp reports them (the value without the spaces and tabs after the
 * colon, with those at its end); reason: the reason phrase; raw: the field lines as one slice when the
 * status line is "HTTP/x.y DDD reason" and every field line is exactly "name: value" (value not starting with
 * a space or tab, see proto/field_lines.py), else b""; end: the offset just after the head's empty line.
 */
static PyObject *
split_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "split_head(buf: bytes, start: int)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    const char *base = PyBytes_AS_STRING(args[0]);
    const char *stop = base + PyBytes_GET_SIZE(args[0]);
    if (start < 0 || start > stop - base)
        Py_RETURN_NONE;
    const char *line = base + start;
    while (line < stop && (*line == '\r' || *line == '\n'))
        line++;
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
    const char *fields_at = end + 2;
    PyObject *fields = PyList_New(0);
    if (fields == NULL)
        return NULL;
    for (line = fields_at;; line = end + 2) {
        if (stop - line < 2)
            goto none;
        if (line[0] == '\r') {
            if (line[1] != '\n')
                goto none;
            break;
        }
        end = memchr(line, '\r', (size_t)(stop - line));
        if (end == NULL || stop - end < 2 || end[1] != '\n')
            goto none;
        const char *colon = memchr(line, ':', (size_t)(end - line));
        if (colon == NULL || colon == line)
            goto none;
        /* "name: value" exactly: one space, and the value (possibly empty) right after it. */
        if (colon + 1 == end || colon[1] != ' ' || (colon + 2 < end && (colon[2] == ' ' || colon[2] == '\t')))
            canonical = 0;
        if (append_field(fields, line, colon, end) < 0)
            goto error;
    }
    PyObject *reason = PyBytes_FromStringAndSize(reason_at, fields_at - 2 - reason_at);
    if (reason == NULL)
        goto error;
    PyObject *raw = PyBytes_FromStringAndSize(canonical ? fields_at : NULL, canonical ? line - fields_at : 0);
    if (raw == NULL) {
        Py_DECREF(reason);
        goto error;
    }
    PyObject *head_end = PyLong_FromSsize_t(line + 2 - base);
    PyObject *result = head_end == NULL ? NULL : PyTuple_New(4);
    if (result == NULL) {
        Py_XDECREF(head_end);
        Py_DECREF(reason);
        Py_DECREF(raw);
        goto error;
    }
    PyTuple_SET_ITEM(result, 0, fields);
    PyTuple_SET_ITEM(result, 1, reason);
    PyTuple_SET_ITEM(result, 2, raw);
    PyTuple_SET_ITEM(result, 3, head_end);
    return result;
none:
    Py_DECREF(fields);
    Py_RETURN_NONE;
error:
    Py_DECREF(fields);
    return NULL;
}

static PyMethodDef methods[] = {
    {"split_head", (PyCFunction)(void (*)(void))split_head, METH_FASTCALL,
     "split_head(buf, start) -> (fields, reason, raw, end) | None: a validated response head's fields."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_h1shim", "An llhttp-validated HTTP/1.1 response head split in one call.", 0, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__h1shim(void)
{
    for (int i = 0; i < N_NAMES; i++) {
        if (name_objects[i] == NULL) {
            name_objects[i] = PyBytes_FromString(NAMES[i]);
            if (name_objects[i] == NULL)
                return NULL;
            name_lengths[i] = (Py_ssize_t)strlen(NAMES[i]);
        }
    }
    return PyModule_Create(&module);
}
