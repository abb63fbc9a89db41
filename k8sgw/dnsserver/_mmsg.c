/* Batched UDP I/O for the UDP server: recvmmsg(2) and sendmmsg(2), which the socket module lacks.
 *
 * One system call reads or writes up to BATCH datagrams. Most of a query's cost under load is the
 * system calls: batched, k8sgw stays near NSD's rate (README "Performance").
 * Addresses are the same Python objects socket.recvfrom returns and socket.sendto takes:
 * (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6. Both calls never block: the
 * caller waits for readiness (trio) and calls again. Buffers are static: the GIL is held for the
 * whole call, which is what makes them safe (the calls never wait, so holding it costs nothing).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h> /* first: its pyconfig.h defines _GNU_SOURCE, which recvmmsg needs */

#ifndef __linux__
#error "recvmmsg/sendmmsg: Linux only (the pure-Python loop serves elsewhere)"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64
#define MAX_DATAGRAM 65535

static char buffers[BATCH][MAX_DATAGRAM];
static struct sockaddr_storage names[BATCH];
static struct iovec iovecs[BATCH];
static struct mmsghdr headers[BATCH];

/* The address tuple socket.recvfrom would give, or NULL with an exception set. */
static PyObject *address_tuple(const struct sockaddr_storage *name, socklen_t size) {
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (name->ss_family == AF_INET && size >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)name;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(in->sin_port));
    }
    if (name->ss_family == AF_INET6 && size >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)name;
        if (in6->sin6_scope_id == 0) {
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        } else if (getnameinfo((const struct sockaddr *)in6, size, host, sizeof host, NULL, 0, NI_NUMERICHOST)) {
            /* A scoped address: the "%zone" spelling, as socket.recvfrom gives it. */
            PyErr_SetString(PyExc_OSError, "getnameinfo failed for a scoped IPv6 address");
            return NULL;
        }
        return Py_BuildValue("(siII)", host, ntohs(in6->sin6_port), ntohl(in6->sin6_flowinfo),
                             in6->sin6_scope_id);
    }
    PyErr_Format(PyExc_OSError, "datagram from an address of family %d", name->ss_family);
    return NULL;
}

/* Fill `name` from an address tuple; 0, or -1 with an exception set. */
static int parse_address(PyObject *addr, struct sockaddr_storage *name, socklen_t *size) {
    const char *host;
    int port;
    unsigned int flowinfo = 0, scope_id = 0;
    char plain[INET6_ADDRSTRLEN];
    memset(name, 0, sizeof *name);
    if (!PyTuple_Check(addr)) {
        PyErr_SetString(PyExc_TypeError, "an address is a tuple");
        return -1;
    }
    if (PyTuple_GET_SIZE(addr) == 2) {
        struct sockaddr_in *in = (struct sockaddr_in *)name;
        if (!PyArg_ParseTuple(addr, "si", &host, &port)) return -1;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1) goto not_numeric;
        *size = sizeof *in;
        return 0;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)name;
    if (!PyArg_ParseTuple(addr, "si|II", &host, &port, &flowinfo, &scope_id)) return -1;
    const char *zone = strchr(host, '%');
    if (zone != NULL) { /* "fe80::1%eth0": the scope travels in scope_id */
        size_t length = (size_t)(zone - host);
        if (length >= sizeof plain) goto not_numeric;
        memcpy(plain, host, length);
        plain[length] = '\0';
        host = plain;
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    in6->sin6_flowinfo = htonl(flowinfo);
    in6->sin6_scope_id = scope_id;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) goto not_numeric;
    *size = sizeof *in6;
    return 0;
not_numeric:
    PyErr_Format(PyExc_ValueError, "not a numeric address: %R", addr);
    return -1;
}

PyDoc_STRVAR(recvmmsg_doc,
"recvmmsg(fd) -> list of (data, address)\n\n"
"Read up to BATCH queued datagrams from a non-blocking UDP socket in one system call.\n"
"Raises BlockingIOError when none is queued, OSError for other errors.");

static PyObject *mmsg_recvmmsg(PyObject *module, PyObject *arg) {
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0) return NULL;
    for (int i = 0; i < BATCH; i++) {
        iovecs[i].iov_base = buffers[i];
        iovecs[i].iov_len = MAX_DATAGRAM;
        memset(&headers[i].msg_hdr, 0, sizeof headers[i].msg_hdr);
        headers[i].msg_hdr.msg_name = &names[i];
        headers[i].msg_hdr.msg_namelen = sizeof names[i];
        headers[i].msg_hdr.msg_iov = &iovecs[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    int count;
    while ((count = recvmmsg(fd, headers, BATCH, MSG_DONTWAIT, NULL)) < 0 && errno == EINTR) {
        if (PyErr_CheckSignals()) return NULL;
    }
    if (count < 0) return PyErr_SetFromErrno(PyExc_OSError);
    PyObject *batch = PyList_New(count);
    if (batch == NULL) return NULL;
    for (int i = 0; i < count; i++) {
        PyObject *address = address_tuple(&names[i], headers[i].msg_hdr.msg_namelen);
        PyObject *data = address ? PyBytes_FromStringAndSize(buffers[i], headers[i].msg_len) : NULL;
        if (data == NULL) {
            Py_XDECREF(address);
            Py_DECREF(batch);
            return NULL;
        }
        PyObject *item = PyTuple_Pack(2, data, address);
        Py_DECREF(data);
        Py_DECREF(address);
        if (item == NULL) {
            Py_DECREF(batch);
            return NULL;
        }
        PyList_SET_ITEM(batch, i, item);
    }
    return batch;
}

PyDoc_STRVAR(sendmmsg_doc,
"sendmmsg(fd, replies, start) -> int\n\n"
"Send replies[start:start+BATCH], a list of (data, address), in one system call on a non-blocking\n"
"UDP socket. Returns how many the kernel took (at least one). Raises BlockingIOError when the send\n"
"buffer is full, OSError when replies[start] itself cannot be sent (the caller skips it).");

static PyObject *mmsg_sendmmsg(PyObject *module, PyObject *args) {
    PyObject *sock, *replies;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "OO!n", &sock, &PyList_Type, &replies, &start)) return NULL;
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0) return NULL;
    Py_ssize_t total = PyList_GET_SIZE(replies);
    if (start < 0 || start >= total) {
        PyErr_SetString(PyExc_IndexError, "start is not an index of replies");
        return NULL;
    }
    int count = 0;
    for (Py_ssize_t i = start; i < total && count < BATCH; i++, count++) {
        PyObject *item = PyList_GET_ITEM(replies, i);
        PyObject *data, *address;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyBytes_Check(data = PyTuple_GET_ITEM(item, 0))) {
            PyErr_SetString(PyExc_TypeError, "a reply is a (bytes, address) tuple");
            return NULL;
        }
        address = PyTuple_GET_ITEM(item, 1);
        memset(&headers[count].msg_hdr, 0, sizeof headers[count].msg_hdr);
        if (parse_address(address, &names[count], &headers[count].msg_hdr.msg_namelen) < 0) return NULL;
        /* The bytes stay alive in `replies` for the whole call: no copy. */
        iovecs[count].iov_base = PyBytes_AS_STRING(data);
        iovecs[count].iov_len = (size_t)PyBytes_GET_SIZE(data);
        headers[count].msg_hdr.msg_name = &names[count];
        headers[count].msg_hdr.msg_iov = &iovecs[count];
        headers[count].msg_hdr.msg_iovlen = 1;
    }
    int sent;
    while ((sent = sendmmsg(fd, headers, (unsigned int)count, MSG_DONTWAIT)) < 0 && errno == EINTR) {
        if (PyErr_CheckSignals()) return NULL;
    }
    if (sent < 0) return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(sent);
}

static PyMethodDef methods[] = {
    {"recvmmsg", mmsg_recvmmsg, METH_O, recvmmsg_doc},
    {"sendmmsg", mmsg_sendmmsg, METH_VARARGS, sendmmsg_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "k8sgw.dnsserver._mmsg",
    "Batched UDP I/O (recvmmsg/sendmmsg) for k8sgw's UDP server.", -1, methods,
};

PyMODINIT_FUNC PyInit__mmsg(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "BATCH", BATCH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
