/* The libnghttp2 server session driven from Python with one call per read and one per write.
 *
 * Why: through cffi's ABI mode every nghttp2 callback (header block start, each header field, each frame,
 * each body chunk, each closed stream, each response DATA frame) is a libffi closure into Python, about ten
 * crossings per request costing more than nghttp2's own work (docs/performance.md, "HTTP/2 steps"). Here
 * those callbacks are C: they append plain tuples to one list that ``recv`` returns, and the response body
 * bytes wait in C-owned queues that the data provider copies from without calling Python at all.
 *
 * What this is not: a policy. The callbacks record; originlock.proto.http2_ng decides (the limits, resets,
 * refusals), the same code whether this module or its cffi twin (proto/nghttp2_cffi.py) runs the session.
 *
 * No nghttp2 headers needed (Debian ships them only in libnghttp2-dev): the few declarations below are
 * nghttp2.h's public, stable ABI (1.x, as proto/nghttp2_lib.py declares them for cffi); the module links
 * against the runtime library, libnghttp2.so.14. If it cannot be built or loaded, the cffi path runs.
 *
 * Events (tuples of four: kind, stream id, an int, an object), in the order nghttp2 produced them:
 *   (EV_REQUEST, sid, flags, fields)   a request header block is complete; fields: list of (name, value);
 *                                      flags: the frame's, plus BLOCK_* bits for the checks every field passed
 *   (EV_HEADERS, sid, flags, None)     any other header block (trailers)
 *   (EV_DATA_END, sid, flags, None)    a DATA frame with END_STREAM
 *   (EV_RST, sid, 0, None)             the visitor's RST_STREAM
 *   (EV_GOAWAY, 0, error_code, None)   the visitor's GOAWAY
 *   (EV_WINDOW, sid, 0, None)          WINDOW_UPDATE or SETTINGS (held-back bytes may move)
 *   (EV_CHUNK, sid, 0, bytes)          request-body bytes
 *   (EV_CLOSE, sid, error_code, None)  nghttp2 closed the stream
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* ---- nghttp2.h's ABI, the part used ---------------------------------------------------------------- */
typedef struct nghttp2_session nghttp2_session;
typedef struct nghttp2_session_callbacks nghttp2_session_callbacks;
typedef struct nghttp2_option nghttp2_option;
typedef struct { int age; int version_num; const char *version_str; const char *proto_str; } nghttp2_info;
typedef struct { uint8_t *name; uint8_t *value; size_t namelen; size_t valuelen; uint8_t flags; } nghttp2_nv;
typedef struct { size_t length; int32_t stream_id; uint8_t type; uint8_t flags; uint8_t reserved; } nghttp2_frame_hd;
typedef struct { int32_t stream_id; int32_t weight; uint8_t exclusive; } nghttp2_priority_spec;
typedef struct {
    nghttp2_frame_hd hd; size_t padlen; nghttp2_priority_spec pri_spec; nghttp2_nv *nva; size_t nvlen; int cat;
} nghttp2_headers;
typedef struct {
    nghttp2_frame_hd hd; int32_t last_stream_id; uint32_t error_code; uint8_t *opaque_data; size_t opaque_data_len;
    uint8_t reserved;
} nghttp2_goaway;
typedef union { nghttp2_frame_hd hd; nghttp2_headers headers; nghttp2_goaway goaway; } nghttp2_frame;
typedef struct { int32_t settings_id; uint32_t value; } nghttp2_settings_entry;
typedef union { int fd; void *ptr; } nghttp2_data_source;
typedef ssize_t (*nghttp2_data_source_read_callback)(nghttp2_session *, int32_t, uint8_t *, size_t, uint32_t *,
                                                     nghttp2_data_source *, void *);
typedef struct { nghttp2_data_source source; nghttp2_data_source_read_callback read_callback; } nghttp2_data_provider;
typedef int (*frame_cb)(nghttp2_session *, const nghttp2_frame *, void *);
typedef int (*chunk_cb)(nghttp2_session *, uint8_t, int32_t, const uint8_t *, size_t, void *);
typedef int (*close_cb)(nghttp2_session *, int32_t, uint32_t, void *);
typedef int (*header_cb)(nghttp2_session *, const nghttp2_frame *, const uint8_t *, size_t, const uint8_t *, size_t,
                         uint8_t, void *);

extern nghttp2_info *nghttp2_version(int);
extern const char *nghttp2_strerror(int);
extern int nghttp2_session_callbacks_new(nghttp2_session_callbacks **);
extern void nghttp2_session_callbacks_set_on_frame_recv_callback(nghttp2_session_callbacks *, frame_cb);
extern void nghttp2_session_callbacks_set_on_data_chunk_recv_callback(nghttp2_session_callbacks *, chunk_cb);
extern void nghttp2_session_callbacks_set_on_stream_close_callback(nghttp2_session_callbacks *, close_cb);
extern void nghttp2_session_callbacks_set_on_begin_headers_callback(nghttp2_session_callbacks *, frame_cb);
extern void nghttp2_session_callbacks_set_on_header_callback(nghttp2_session_callbacks *, header_cb);
extern int nghttp2_option_new(nghttp2_option **);
extern void nghttp2_option_set_no_auto_window_update(nghttp2_option *, int);
extern void nghttp2_option_set_no_closed_streams(nghttp2_option *, int);
extern void nghttp2_option_set_no_http_messaging(nghttp2_option *, int);
extern void nghttp2_option_set_max_deflate_dynamic_table_size(nghttp2_option *, size_t);
extern void nghttp2_option_set_max_outbound_ack(nghttp2_option *, size_t);
extern void nghttp2_option_set_max_settings(nghttp2_option *, size_t);
extern int nghttp2_session_server_new2(nghttp2_session **, const nghttp2_session_callbacks *, void *,
                                       const nghttp2_option *);
extern void nghttp2_session_del(nghttp2_session *);
extern ssize_t nghttp2_session_mem_recv(nghttp2_session *, const uint8_t *, size_t);
extern ssize_t nghttp2_session_mem_send(nghttp2_session *, const uint8_t **);
extern int nghttp2_session_want_read(nghttp2_session *);
extern int nghttp2_session_consume(nghttp2_session *, int32_t, size_t);
extern int nghttp2_session_resume_data(nghttp2_session *, int32_t);
extern int nghttp2_session_set_local_window_size(nghttp2_session *, uint8_t, int32_t, int32_t);
extern int nghttp2_submit_settings(nghttp2_session *, uint8_t, const nghttp2_settings_entry *, size_t);
extern int nghttp2_submit_response(nghttp2_session *, int32_t, const nghttp2_nv *, size_t,
                                   const nghttp2_data_provider *);
extern int32_t nghttp2_submit_headers(nghttp2_session *, uint8_t, int32_t, const nghttp2_priority_spec *,
                                      const nghttp2_nv *, size_t, void *);
extern int nghttp2_submit_rst_stream(nghttp2_session *, uint8_t, int32_t, uint32_t);

#define ERR_DEFERRED (-508)
#define ERR_CALLBACK_FAILURE (-902)
#define DATA_FLAG_EOF 0x01
#define NV_FLAG_NO_INDEX 0x01
#define FLAG_END_STREAM 0x01
#define HCAT_REQUEST 0
enum { F_DATA = 0, F_HEADERS = 1, F_RST_STREAM = 3, F_SETTINGS = 4, F_GOAWAY = 7, F_WINDOW_UPDATE = 8 };
/* EV_REQUEST's flags above the frame's own (one byte): what every field of the block was checked to be, so
 * that the request pass (proto/http2_request.py) skips those checks. Only certifies: a block without a bit
 * gets the full checks in Python, which decide and say why. */
#define BLOCK_FIELDS_CLEAN 0x100 /* regular names are lower-case tokens; values: no control byte but tab,
                                    no DEL, no space or tab around them */
#define BLOCK_PSEUDO_CLEAN 0x200 /* pseudo-header values: no space, control byte or DEL (a target's bytes) */
/* Byte classes for those checks and for the response fields (RFC 9110 §5.6.2 tchar; what llhttp refuses). */
#define C_TOKEN_LOWER 1 /* a token character that is not an upper-case letter */
#define C_VALUE_BAD 2   /* a control byte other than tab, or DEL */
#define C_TARGET_BAD 4  /* a space, a control byte or DEL */
#define C_CR_LF_NUL 8
static unsigned char byte_class[256];
/* respond()'s answer when the fields need the general path (proto/http2_request.py's response_fields). */
#define NEEDS_PYTHON 1
enum { EV_REQUEST = 1, EV_HEADERS = 2, EV_DATA_END = 3, EV_RST = 4, EV_GOAWAY = 5, EV_WINDOW = 6, EV_CHUNK = 7,
       EV_CLOSE = 8 };

/* ---- the response-body queue of one stream ----------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    PyObject *chunks; /* list of bytes */
    Py_ssize_t head;   /* chunks before it are sent */
    Py_ssize_t offset; /* bytes of chunks[head] sent */
    Py_ssize_t size;   /* bytes still to send */
    int eof;           /* END_STREAM after the last byte */
    int deferred;      /* the provider said "nothing yet": resume it when bytes come */
} OutQueue;

static void outqueue_dealloc(OutQueue *q) {
    Py_XDECREF(q->chunks);
    Py_TYPE(q)->tp_free((PyObject *)q);
}

static PyTypeObject OutQueueType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "originlock.proto._ngshim.OutQueue",
    .tp_basicsize = sizeof(OutQueue),
    .tp_dealloc = (destructor)outqueue_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

/* ---- the session --------------------------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    nghttp2_session *session;
    PyObject *events;    /* list the running recv appends to */
    PyObject *fields;    /* the header block being decoded */
    PyObject *queues;    /* dict: stream id -> OutQueue of a response submitted with the provider */
    PyObject *ended;     /* list: streams whose END_STREAM the provider sent during the running send */
    Py_ssize_t block_size;
    Py_ssize_t max_header_list;
    int block_flags;     /* BLOCK_* bits the header block being decoded still has */
    long data_frames;    /* DATA frames the provider filled during the running send */
    int overflow;        /* a header list went above max_header_list (the recv failed for it) */
    int failed;          /* a Python allocation failed inside a callback */
} Session;

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *option;

/* Field names (and pseudo-header values) that requests carry over and over, as shared bytes objects: no
 * allocation per field, and their hash, computed once, serves every dict and set lookup that follows. */
static const char *const KNOWN_NAMES[] = {
    ":method", ":scheme", ":authority", ":path", "user-agent", "accept", "accept-encoding", "accept-language",
    "cookie", "host", "content-length", "content-type", "referer", "origin", "cache-control", "pragma", "te",
    "priority", "authorization", "if-none-match", "if-modified-since", "upgrade-insecure-requests",
    "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user", "sec-ch-ua", "sec-ch-ua-mobile",
    "sec-ch-ua-platform", "x-requested-with", "dnt", NULL};
static const char *const KNOWN_PSEUDO_VALUES[] = {"GET", "POST", "HEAD", "https", "http", "/", NULL};
#define MAX_KNOWN 40
static PyObject *known_names[MAX_KNOWN], *known_values[MAX_KNOWN];

static int intern_table(const char *const *texts, PyObject **objects) {
    for (int i = 0; texts[i] != NULL; i++)
        if ((objects[i] = PyBytes_FromString(texts[i])) == NULL)
            return -1;
    return 0;
}

/* A new reference: the shared object when ``data`` is one of ``objects``, else a new bytes object. */
static PyObject *bytes_of(PyObject **objects, const uint8_t *data, size_t len) {
    for (int i = 0; objects[i] != NULL; i++)
        if ((size_t)PyBytes_GET_SIZE(objects[i]) == len && len && (uint8_t)PyBytes_AS_STRING(objects[i])[0] == data[0] &&
            memcmp(PyBytes_AS_STRING(objects[i]), data, len) == 0) {
            Py_INCREF(objects[i]);
            return objects[i];
        }
    return PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
}

static void init_byte_classes(void) {
    for (int c = 0; c < 256; c++) {
        unsigned char k = 0;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL))
            k |= C_TOKEN_LOWER;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            k |= C_VALUE_BAD;
        if (c <= 0x20 || c == 0x7f)
            k |= C_TARGET_BAD;
        if (c == '\r' || c == '\n' || c == 0)
            k |= C_CR_LF_NUL;
        byte_class[c] = k;
    }
}

/* The classes of all of ``data``'s bytes, or-ed. */
static unsigned char classes_of(const uint8_t *data, size_t len) {
    unsigned char seen = 0;
    for (size_t i = 0; i < len; i++)
        seen |= byte_class[data[i]];
    return seen;
}

static int add_event(Session *s, int kind, int32_t sid, long value, PyObject *obj) {
    PyObject *event = PyTuple_New(4);
    PyObject *k = PyLong_FromLong(kind), *id = PyLong_FromLong(sid), *v = PyLong_FromLong(value);
    if (event == NULL || k == NULL || id == NULL || v == NULL) {
        Py_XDECREF(event);
        Py_XDECREF(k);
        Py_XDECREF(id);
        Py_XDECREF(v);
        s->failed = 1;
        return ERR_CALLBACK_FAILURE;
    }
    obj = obj ? obj : Py_None;
    Py_INCREF(obj);
    PyTuple_SET_ITEM(event, 0, k);
    PyTuple_SET_ITEM(event, 1, id);
    PyTuple_SET_ITEM(event, 2, v);
    PyTuple_SET_ITEM(event, 3, obj);
    int rv = PyList_Append(s->events, event);
    Py_DECREF(event);
    if (rv < 0) {
        s->failed = 1;
        return ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user) {
    Session *s = user;
    PyObject *fields = PyList_New(0);
    if (fields == NULL) {
        s->failed = 1;
        return ERR_CALLBACK_FAILURE;
    }
    Py_XSETREF(s->fields, fields); /* a block found malformed midway never completes: start afresh */
    s->block_size = 0;
    s->block_flags = BLOCK_FIELDS_CLEAN | BLOCK_PSEUDO_CLEAN;
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user) {
    Session *s = user;
    s->block_size += (Py_ssize_t)(namelen + valuelen + 32);
    if (s->block_size > s->max_header_list) {
        s->overflow = 1; /* an HPACK bomb: stop decoding, the connection ends */
        return ERR_CALLBACK_FAILURE;
    }
    int pseudo = namelen > 0 && name[0] == ':';
    unsigned char seen = classes_of(value, valuelen);
    if (pseudo && (seen & C_TARGET_BAD))
        s->block_flags &= ~BLOCK_PSEUDO_CLEAN;
    if ((seen & C_VALUE_BAD) || namelen == 0 ||
        (valuelen && (value[0] == ' ' || value[0] == '\t' || value[valuelen - 1] == ' ' || value[valuelen - 1] == '\t')))
        s->block_flags &= ~BLOCK_FIELDS_CLEAN;
    else if (!pseudo)
        for (size_t i = 0; i < namelen; i++)
            if (!(byte_class[name[i]] & C_TOKEN_LOWER)) {
                s->block_flags &= ~BLOCK_FIELDS_CLEAN;
                break;
            }
    PyObject *field = PyTuple_New(2);
    PyObject *n = bytes_of(known_names, name, namelen);
    PyObject *v = pseudo ? bytes_of(known_values, value, valuelen)
                         : PyBytes_FromStringAndSize((const char *)value, (Py_ssize_t)valuelen);
    if (field == NULL || n == NULL || v == NULL || s->fields == NULL) {
        Py_XDECREF(field);
        Py_XDECREF(n);
        Py_XDECREF(v);
        s->failed = 1;
        return ERR_CALLBACK_FAILURE;
    }
    PyTuple_SET_ITEM(field, 0, n);
    PyTuple_SET_ITEM(field, 1, v);
    int rv = PyList_Append(s->fields, field);
    Py_DECREF(field);
    if (rv < 0) {
        s->failed = 1;
        return ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user) {
    Session *s = user;
    const nghttp2_frame_hd *hd = &frame->hd;
    switch (hd->type) {
    case F_HEADERS:
        if (frame->headers.cat == HCAT_REQUEST) {
            int rv = add_event(s, EV_REQUEST, hd->stream_id, hd->flags | s->block_flags, s->fields ? s->fields : Py_None);
            Py_CLEAR(s->fields);
            return rv;
        }
        return (hd->flags & FLAG_END_STREAM) ? add_event(s, EV_HEADERS, hd->stream_id, hd->flags, NULL) : 0;
    case F_DATA:
        return (hd->flags & FLAG_END_STREAM) ? add_event(s, EV_DATA_END, hd->stream_id, hd->flags, NULL) : 0;
    case F_RST_STREAM:
        return add_event(s, EV_RST, hd->stream_id, 0, NULL);
    case F_GOAWAY:
        return add_event(s, EV_GOAWAY, 0, (long)frame->goaway.error_code, NULL);
    case F_WINDOW_UPDATE:
    case F_SETTINGS:
        return add_event(s, EV_WINDOW, hd->stream_id, 0, NULL);
    default:
        return 0;
    }
}

static int on_chunk(nghttp2_session *session, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                    void *user) {
    Session *s = user;
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
    if (bytes == NULL) {
        s->failed = 1;
        return ERR_CALLBACK_FAILURE;
    }
    int rv = add_event(s, EV_CHUNK, sid, 0, bytes);
    Py_DECREF(bytes);
    return rv;
}

static int on_close(nghttp2_session *session, int32_t sid, uint32_t code, void *user) {
    return add_event((Session *)user, EV_CLOSE, sid, (long)code, NULL);
}

static OutQueue *queue_of(Session *s, int32_t sid) {
    PyObject *key = PyLong_FromLong(sid);
    if (key == NULL)
        return NULL;
    PyObject *q = PyDict_GetItemWithError(s->queues, key); /* borrowed */
    Py_DECREF(key);
    return (OutQueue *)q;
}

/* The data provider: copies the stream's queued bytes into nghttp2's frame buffer, no Python call. */
static ssize_t read_body(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *source, void *user) {
    Session *s = user;
    OutQueue *q = queue_of(s, sid);
    if (q == NULL) {
        PyErr_Clear();
        return ERR_DEFERRED; /* reset meanwhile: nghttp2 drops the item with the stream */
    }
    size_t done = 0;
    Py_ssize_t count = PyList_GET_SIZE(q->chunks);
    while (done < length && q->head < count) {
        PyObject *chunk = PyList_GET_ITEM(q->chunks, q->head);
        Py_ssize_t avail = PyBytes_GET_SIZE(chunk) - q->offset;
        size_t n = (size_t)avail < length - done ? (size_t)avail : length - done;
        memcpy(buf + done, PyBytes_AS_STRING(chunk) + q->offset, n);
        done += n;
        q->offset += (Py_ssize_t)n;
        if (q->offset == PyBytes_GET_SIZE(chunk)) {
            q->head++;
            q->offset = 0;
        }
    }
    if (q->head == count && count) {
        if (PyList_SetSlice(q->chunks, 0, count, NULL) < 0) {
            s->failed = 1;
            return ERR_CALLBACK_FAILURE;
        }
        q->head = 0;
    }
    q->size -= (Py_ssize_t)done;
    if (q->size == 0 && q->eof) {
        *flags |= DATA_FLAG_EOF;
        PyObject *key = PyLong_FromLong(sid);
        if (key == NULL || PyList_Append(s->ended, key) < 0 || PyDict_DelItem(s->queues, key) < 0) {
            Py_XDECREF(key);
            s->failed = 1;
            return ERR_CALLBACK_FAILURE;
        }
        Py_DECREF(key);
    } else if (!done) {
        q->deferred = 1;
        return ERR_DEFERRED;
    }
    s->data_frames++;
    return (ssize_t)done;
}

static nghttp2_data_provider provider = {.source = {.ptr = NULL}, .read_callback = read_body};

static PyObject *session_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Py_ssize_t max_header_list;
    if (!PyArg_ParseTuple(args, "n", &max_header_list))
        return NULL;
    Session *s = (Session *)type->tp_alloc(type, 0);
    if (s == NULL)
        return NULL;
    s->max_header_list = max_header_list;
    s->events = PyList_New(0);
    s->queues = PyDict_New();
    s->ended = PyList_New(0);
    if (s->events == NULL || s->queues == NULL || s->ended == NULL) {
        Py_DECREF(s);
        return NULL;
    }
    if (nghttp2_session_server_new2(&s->session, callbacks, s, option) != 0) {
        Py_DECREF(s);
        return PyErr_NoMemory();
    }
    return (PyObject *)s;
}

static void session_dealloc(Session *s) {
    if (s->session)
        nghttp2_session_del(s->session);
    Py_XDECREF(s->events);
    Py_XDECREF(s->fields);
    Py_XDECREF(s->queues);
    Py_XDECREF(s->ended);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

/* recv(data) -> (rv, events, header_list_overflow) */
static PyObject *session_recv(Session *s, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    s->overflow = 0;
    s->failed = 0;
    ssize_t rv = nghttp2_session_mem_recv(s->session, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (s->failed)
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    PyObject *events = s->events;
    s->events = PyList_New(0);
    if (s->events == NULL) {
        s->events = events;
        return NULL;
    }
    PyObject *result = Py_BuildValue("(nNi)", (Py_ssize_t)rv, events, s->overflow);
    return result;
}

/* send() -> (rv, frames, ended stream ids, DATA frames sent, a GOAWAY among the frames, events): the events
 * are those of streams nghttp2 closed while sending (after its own RST_STREAM, or both ends done) */
static PyObject *session_send(Session *s, PyObject *unused) {
    const uint8_t *data;
    ssize_t size;
    int goaway = 0;
    PyObject *first = NULL, *parts = NULL;
    s->data_frames = 0;
    s->failed = 0;
    while ((size = nghttp2_session_mem_send(s->session, &data)) > 0) {
        goaway |= size >= 9 && data[3] == F_GOAWAY; /* each answer is one frame (or its continuation) */
        PyObject *chunk = PyBytes_FromStringAndSize((const char *)data, size);
        if (chunk == NULL)
            goto fail;
        if (first == NULL && parts == NULL) {
            first = chunk;
            continue;
        }
        if (parts == NULL) {
            parts = PyList_New(1);
            if (parts == NULL) {
                Py_DECREF(chunk);
                goto fail;
            }
            PyList_SET_ITEM(parts, 0, first);
            first = NULL;
        }
        int rv = PyList_Append(parts, chunk);
        Py_DECREF(chunk);
        if (rv < 0)
            goto fail;
    }
    if (s->failed)
        goto fail;
    PyObject *out;
    if (parts != NULL) {
        PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
        out = empty ? _PyBytes_Join(empty, parts) : NULL;
        Py_XDECREF(empty);
        Py_CLEAR(parts);
        if (out == NULL)
            goto fail;
    } else if (first != NULL) {
        out = first;
        first = NULL;
    } else {
        out = PyBytes_FromStringAndSize(NULL, 0);
        if (out == NULL)
            goto fail;
    }
    PyObject *ended = s->ended, *events = s->events;
    s->ended = PyList_New(0);
    s->events = PyList_New(0);
    if (s->ended == NULL || s->events == NULL) {
        Py_XSETREF(s->ended, ended);
        Py_XSETREF(s->events, events);
        Py_DECREF(out);
        return NULL;
    }
    return Py_BuildValue("(nNNliN)", (Py_ssize_t)(size < 0 ? size : 0), out, ended, s->data_frames, goaway, events);
fail:
    Py_XDECREF(first);
    Py_XDECREF(parts);
    return PyErr_Occurred() ? NULL : PyErr_NoMemory();
}

/* A body queue for the stream, for the data provider to copy from. */
static int add_queue(Session *s, int sid) {
    OutQueue *q = PyObject_New(OutQueue, &OutQueueType);
    PyObject *key = PyLong_FromLong(sid);
    if (q != NULL) {
        q->chunks = PyList_New(0);
        q->head = q->offset = q->size = 0;
        q->eof = q->deferred = 0;
    }
    int rv = (q == NULL || key == NULL || q->chunks == NULL) ? -1 : PyDict_SetItem(s->queues, key, (PyObject *)q);
    Py_XDECREF(q);
    Py_XDECREF(key);
    return rv;
}

/* CF-Ray: a value no other response repeats. HPACK-indexing it (nghttp2's default) only evicts the fields
 * that do repeat (Server, Date, Content-Type...), which then go out as literals again: measured, about 5k
 * instructions per response more (docs/performance.md, issue 12 h2perf). */
static int is_unique_per_response(const uint8_t *name, size_t len) {
    return len == 6 && (name[0] | 0x20) == 'c' && strncasecmp((const char *)name, "cf-ray", 6) == 0;
}

/* Fields for nghttp2: pointers into the caller's bytes (nghttp2 copies them before returning). */
static nghttp2_nv *make_nva(PyObject *fields, Py_ssize_t *count) {
    PyObject *seq = PySequence_Fast(fields, "fields must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    nghttp2_nv *nva = PyMem_Malloc(sizeof(nghttp2_nv) * (n ? n : 1));
    if (nva == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *field = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *name, *value;
        if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 2 ||
            !PyBytes_Check(name = PyTuple_GET_ITEM(field, 0)) || !PyBytes_Check(value = PyTuple_GET_ITEM(field, 1))) {
            PyMem_Free(nva);
            Py_DECREF(seq);
            PyErr_SetString(PyExc_TypeError, "fields must be (bytes, bytes) tuples");
            return NULL;
        }
        nva[i].name = (uint8_t *)PyBytes_AS_STRING(name);
        nva[i].namelen = (size_t)PyBytes_GET_SIZE(name);
        nva[i].value = (uint8_t *)PyBytes_AS_STRING(value);
        nva[i].valuelen = (size_t)PyBytes_GET_SIZE(value);
        nva[i].flags = is_unique_per_response(nva[i].name, nva[i].namelen) ? NV_FLAG_NO_INDEX : 0;
    }
    *count = n;
    Py_DECREF(seq); /* the tuples stay alive in ``fields``, which the caller holds */
    return nva;
}

/* submit_response(sid, fields, body) -> rv; body: queue the stream's bytes (push) for the data provider */
static PyObject *session_submit_response(Session *s, PyObject *args) {
    int sid, body;
    PyObject *fields;
    if (!PyArg_ParseTuple(args, "iOp", &sid, &fields, &body))
        return NULL;
    Py_ssize_t n;
    nghttp2_nv *nva = make_nva(fields, &n);
    if (nva == NULL)
        return NULL;
    if (body && add_queue(s, sid) < 0) {
        PyMem_Free(nva);
        return NULL;
    }
    int rv = nghttp2_submit_response(s->session, sid, nva, (size_t)n, body ? &provider : NULL);
    PyMem_Free(nva);
    return PyLong_FromLong(rv);
}

/* submit_headers(sid, fields) -> rv: an interim (1xx) head */
static PyObject *session_submit_headers(Session *s, PyObject *args) {
    int sid;
    PyObject *fields;
    if (!PyArg_ParseTuple(args, "iO", &sid, &fields))
        return NULL;
    Py_ssize_t n;
    nghttp2_nv *nva = make_nva(fields, &n);
    if (nva == NULL)
        return NULL;
    int rv = nghttp2_submit_headers(s->session, 0, sid, NULL, nva, (size_t)n, NULL);
    PyMem_Free(nva);
    return PyLong_FromLong(rv);
}

/* Whether the ``len`` bytes at ``name`` are one of the bytes objects of the tuple ``names``. */
static int among(PyObject *names, const char *name, size_t len) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *one = PyTuple_GET_ITEM(names, i);
        if (PyBytes_Check(one) && (size_t)PyBytes_GET_SIZE(one) == len && len &&
            PyBytes_AS_STRING(one)[0] == name[0] && memcmp(PyBytes_AS_STRING(one), name, len) == 0)
            return 1;
    }
    return 0;
}

/* Whether one of ``headers`` has the name ``token`` (``len`` lower-case bytes), in any case. */
static int has_field(PyObject *headers, const char *token, size_t len) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        PyObject *name = PyTuple_GET_ITEM(PyList_GET_ITEM(headers, i), 0);
        const char *raw = PyBytes_AS_STRING(name);
        size_t j = 0;
        if ((size_t)PyBytes_GET_SIZE(name) != len)
            continue;
        while (j < len && ((raw[j] >= 'A' && raw[j] <= 'Z') ? raw[j] + 32 : raw[j]) == token[j])
            j++;
        if (j == len)
            return 1;
    }
    return 0;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Whether a Connection field's ``value`` names a field of ``headers`` that ``dropped`` does not drop anyway
 * (that field must go too: the general path does it). Tokens as forwarding.py's _named_tokens reads them:
 * split on commas, ASCII whitespace stripped, lower-cased. */
static int names_a_field(PyObject *headers, PyObject *dropped, PyObject *value) {
    const char *at = PyBytes_AS_STRING(value), *end = at + PyBytes_GET_SIZE(value);
    char token[64];
    while (at <= end) {
        const char *comma = memchr(at, ',', (size_t)(end - at));
        const char *stop = comma ? comma : end, *start = at;
        while (start < stop && is_space(*start))
            start++;
        while (stop > start && is_space(stop[-1]))
            stop--;
        size_t len = (size_t)(stop - start);
        if (len > sizeof token)
            return 1; /* longer than any name worth a fast path: let Python decide */
        for (size_t j = 0; j < len; j++)
            token[j] = (start[j] >= 'A' && start[j] <= 'Z') ? (char)(start[j] + 32) : start[j];
        if (!among(dropped, token, len) && has_field(headers, token, len))
            return 1;
        if (comma == NULL)
            break;
        at = comma + 1;
    }
    return 0;
}

/* respond(sid, status, headers, dropped, extra_name, extra_value) -> rv, with a body to come (the data provider).
 *
 * A response head whose fields are not in HTTP/2 form yet (the origin's, as parsed): the names lower-cased
 * and checked to be tokens, those in the tuple ``dropped`` (lower-case) left out, the values checked for CR,
 * LF and NUL, ``extra`` added last; the same fields proto/http2_request.py's response_fields makes, without
 * a Python object per field. NEEDS_PYTHON, with nothing queued, for anything else: a status outside
 * 200-599, a Connection field naming a field that is there (it must go too), a name or value the checks
 * refuse. */
static PyObject *session_respond(Session *s, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "respond(sid, status, headers, dropped, extra_name, extra_value)");
        return NULL;
    }
    long sid = PyLong_AsLong(args[0]), status = PyLong_AsLong(args[1]);
    PyObject *headers = args[2], *dropped = args[3], *extra_name = args[4], *extra_value = args[5];
    if ((sid == -1 || status == -1) && PyErr_Occurred())
        return NULL;
    if (status < 200 || status > 599 || !PyList_Check(headers) || !PyTuple_Check(dropped) ||
        !PyBytes_Check(extra_name) || !PyBytes_Check(extra_value))
        return PyLong_FromLong(NEEDS_PYTHON);
    Py_ssize_t n = PyList_GET_SIZE(headers), names_size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *field = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(field, 0)) ||
            !PyBytes_Check(PyTuple_GET_ITEM(field, 1)))
            return PyLong_FromLong(NEEDS_PYTHON);
        names_size += PyBytes_GET_SIZE(PyTuple_GET_ITEM(field, 0));
    }
    nghttp2_nv *nva = PyMem_Malloc(sizeof(nghttp2_nv) * (size_t)(n + 2));
    char *names = PyMem_Malloc((size_t)names_size + 1);
    if (nva == NULL || names == NULL) {
        PyMem_Free(nva);
        PyMem_Free(names);
        return PyErr_NoMemory();
    }
    char code[3] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10), (char)('0' + status % 10)};
    nva[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)code, 7, 3, 0};
    Py_ssize_t count = 1, at = 0;
    long rv = 0;
    for (Py_ssize_t i = 0; i < n && rv == 0; i++) {
        PyObject *field = PyList_GET_ITEM(headers, i);
        PyObject *name = PyTuple_GET_ITEM(field, 0), *value = PyTuple_GET_ITEM(field, 1);
        const char *raw = PyBytes_AS_STRING(name);
        size_t len = (size_t)PyBytes_GET_SIZE(name);
        char *lower = names + at;
        unsigned char seen = C_TOKEN_LOWER;
        for (size_t j = 0; j < len; j++) {
            char c = raw[j];
            lower[j] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            seen &= byte_class[(unsigned char)lower[j]];
        }
        if (len == 10 && memcmp(lower, "connection", 10) == 0 && names_a_field(headers, dropped, value))
            rv = NEEDS_PYTHON;
        else if (among(dropped, lower, len))
            continue;
        else if (!len || !(seen & C_TOKEN_LOWER) ||
                 classes_of((const uint8_t *)PyBytes_AS_STRING(value), (size_t)PyBytes_GET_SIZE(value)) & C_CR_LF_NUL)
            rv = NEEDS_PYTHON;
        else {
            nva[count++] = (nghttp2_nv){(uint8_t *)lower, (uint8_t *)PyBytes_AS_STRING(value), len,
                                        (size_t)PyBytes_GET_SIZE(value), 0};
            at += (Py_ssize_t)len;
        }
    }
    if (rv == 0 && (classes_of((const uint8_t *)PyBytes_AS_STRING(extra_value), (size_t)PyBytes_GET_SIZE(extra_value)) &
                    C_CR_LF_NUL))
        rv = NEEDS_PYTHON;
    if (rv == 0) {
        nva[count++] = (nghttp2_nv){(uint8_t *)PyBytes_AS_STRING(extra_name), (uint8_t *)PyBytes_AS_STRING(extra_value),
                                    (size_t)PyBytes_GET_SIZE(extra_name), (size_t)PyBytes_GET_SIZE(extra_value),
                                    NV_FLAG_NO_INDEX};
        if (add_queue(s, (int)sid) < 0)
            rv = -1;
        else
            rv = nghttp2_submit_response(s->session, (int32_t)sid, nva, (size_t)count, &provider);
    }
    PyMem_Free(nva);
    PyMem_Free(names);
    if (rv == -1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromLong(rv);
}

/* push(sid, data, end) -> bool: queue response bytes (False: no such queue) */
static PyObject *session_push(Session *s, PyObject *args) {
    int sid, end;
    PyObject *data;
    if (!PyArg_ParseTuple(args, "iSp", &sid, &data, &end))
        return NULL;
    OutQueue *q = queue_of(s, sid);
    if (q == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_FALSE;
    }
    if (PyBytes_GET_SIZE(data)) {
        if (PyList_Append(q->chunks, data) < 0)
            return NULL;
        q->size += PyBytes_GET_SIZE(data);
    }
    q->eof = end;
    if (q->deferred) {
        q->deferred = 0;
        nghttp2_session_resume_data(s->session, sid);
    }
    Py_RETURN_TRUE;
}

/* buffered(sid) -> bytes queued and not yet sent */
static PyObject *session_buffered(Session *s, PyObject *arg) {
    int sid = (int)PyLong_AsLong(arg);
    if (sid == -1 && PyErr_Occurred())
        return NULL;
    OutQueue *q = queue_of(s, sid);
    if (q == NULL && PyErr_Occurred())
        return NULL;
    return PyLong_FromSsize_t(q == NULL ? 0 : q->size);
}

/* forget(sid): the stream left the edge's table; its queued bytes are dropped */
static PyObject *session_forget(Session *s, PyObject *arg) {
    /* Asked first: a missing key would raise a KeyError to clear (the provider dropped the queue at its end). */
    int found = PyDict_Contains(s->queues, arg);
    if (found < 0 || (found && PyDict_DelItem(s->queues, arg) < 0))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *session_rst(Session *s, PyObject *args) {
    int sid;
    unsigned int code;
    if (!PyArg_ParseTuple(args, "iI", &sid, &code))
        return NULL;
    return PyLong_FromLong(nghttp2_submit_rst_stream(s->session, 0, sid, code));
}

static PyObject *session_consume(Session *s, PyObject *args) {
    int sid;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "in", &sid, &size))
        return NULL;
    return PyLong_FromLong(nghttp2_session_consume(s->session, sid, (size_t)size));
}

/* settings([(id, value), ...]) -> rv */
static PyObject *session_settings(Session *s, PyObject *arg) {
    nghttp2_settings_entry iv[16];
    Py_ssize_t n = PyList_Check(arg) ? PyList_GET_SIZE(arg) : -1;
    if (n < 0 || n > 16) {
        PyErr_SetString(PyExc_ValueError, "settings: a list of at most 16 (id, value) pairs");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned int id, value;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(arg, i), "II", &id, &value))
            return NULL;
        iv[i].settings_id = (int32_t)id;
        iv[i].value = value;
    }
    return PyLong_FromLong(nghttp2_submit_settings(s->session, 0, iv, (size_t)n));
}

static PyObject *session_set_local_window(Session *s, PyObject *arg) {
    long size = PyLong_AsLong(arg);
    if (size == -1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromLong(nghttp2_session_set_local_window_size(s->session, 0, 0, (int32_t)size));
}

static PyObject *session_want_read(Session *s, PyObject *unused) {
    return PyBool_FromLong(nghttp2_session_want_read(s->session));
}

static PyMethodDef session_methods[] = {
    {"recv", (PyCFunction)session_recv, METH_O, "Feed bytes: (rv, events, header list overflow)."},
    {"send", (PyCFunction)session_send, METH_NOARGS, "(rv, frames, ended, DATA frames, GOAWAY sent, events)."},
    {"submit_response", (PyCFunction)session_submit_response, METH_VARARGS, "Queue a response head."},
    {"submit_headers", (PyCFunction)session_submit_headers, METH_VARARGS, "Queue an interim head."},
    {"respond", (PyCFunction)(void (*)(void))session_respond, METH_FASTCALL, "Queue a head from raw fields."},
    {"push", (PyCFunction)session_push, METH_VARARGS, "Queue response-body bytes."},
    {"buffered", (PyCFunction)session_buffered, METH_O, "Response bytes queued on the stream."},
    {"forget", (PyCFunction)session_forget, METH_O, "Drop the stream's queued bytes."},
    {"rst", (PyCFunction)session_rst, METH_VARARGS, "Queue RST_STREAM."},
    {"consume", (PyCFunction)session_consume, METH_VARARGS, "Acknowledge request-body bytes."},
    {"settings", (PyCFunction)session_settings, METH_O, "Queue our SETTINGS."},
    {"set_local_window", (PyCFunction)session_set_local_window, METH_O, "Size the connection window."},
    {"want_read", (PyCFunction)session_want_read, METH_NOARGS, "nghttp2 still reads."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SessionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "originlock.proto._ngshim.Session",
    .tp_basicsize = sizeof(Session),
    .tp_dealloc = (destructor)session_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = session_methods,
    .tp_new = session_new,
    .tp_doc = "One server session of libnghttp2: Session(max_header_list_size).",
};

static PyObject *mod_strerror(PyObject *mod, PyObject *arg) {
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(nghttp2_strerror((int)code));
}

static PyMethodDef module_methods[] = {
    {"strerror", mod_strerror, METH_O, "nghttp2's message for an error code."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ngshim", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__ngshim(void) {
    /* 1.52 (Debian 12) is the oldest with the options relied on (max outbound ACKs, max SETTINGS). */
    nghttp2_info *info = nghttp2_version(0x013400);
    if (info == NULL) {
        PyErr_SetString(PyExc_ImportError, "libnghttp2 is older than 1.52");
        return NULL;
    }
    if (callbacks == NULL) {
        if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&option) != 0)
            return PyErr_NoMemory();
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_close);
        nghttp2_option_set_no_auto_window_update(option, 1);
        nghttp2_option_set_no_closed_streams(option, 1);
        nghttp2_option_set_no_http_messaging(option, 1);
        nghttp2_option_set_max_deflate_dynamic_table_size(option, 4096);
        nghttp2_option_set_max_outbound_ack(option, 1000);
        nghttp2_option_set_max_settings(option, 32);
    }
    if (known_names[0] == NULL) {
        init_byte_classes();
        if (intern_table(KNOWN_NAMES, known_names) < 0 || intern_table(KNOWN_PSEUDO_VALUES, known_values) < 0)
            return NULL;
    }
    if (PyType_Ready(&OutQueueType) < 0 || PyType_Ready(&SessionType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SessionType);
    if (PyModule_AddObject(m, "Session", (PyObject *)&SessionType) < 0 ||
        PyModule_AddStringConstant(m, "version", info->version_str) < 0) {
        Py_DECREF(&SessionType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
