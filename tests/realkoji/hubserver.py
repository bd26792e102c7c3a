"""Serve a real kojihub (koji's own WSGI application, from koji's source) and koji's
top directory on one loopback port, for the real-koji tests.

    hubserver.py --port P --config HUB.CONF --topdir DIR [--front-secret SECRET]

POST /kojihub        the hub (kojihub.kojixmlrpc.application)
GET  /kojifiles/...  koji's topdir, read-only (kojid's topurl, dnf's baseurl)

With --front-secret, a request that carries the secret in X-Koji-Front-Secret comes
from the test's httpd (httpd.py), which authenticated it: its X-Koji-Remote-User
becomes REMOTE_USER, as mod_auth_gssapi sets it for a hub under httpd, and koji's
sslLogin maps that principal. No other request can set REMOTE_USER.

Production hubs run under httpd + mod_wsgi; Python's wsgiref with a thread per
request is enough for tests. wsgiref hands the application the raw socket as
wsgi.input, with no end: reads are capped at CONTENT_LENGTH here, or the hub would
block reading an upload's body.
"""

import argparse
import io
import mimetypes
import os
import socketserver
import sys
import urllib.parse
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class BoundedInput(io.RawIOBase):
    """wsgi.input that ends after CONTENT_LENGTH bytes."""

    def __init__(self, stream, length):
        self.stream, self.left = stream, length

    def readable(self):
        return True

    def read(self, size=-1):
        if self.left <= 0:
            return b""
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self.stream.read(size)
        self.left -= len(data)
        return data

    def readline(self, size=-1):
        if self.left <= 0:
            return b""
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self.stream.readline(size)
        self.left -= len(data)
        return data


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("hubserver: %s\n" % (format % args))


def files(topdir, environ, start_response):
    """Koji's topdir as a static tree: what kojid and dnf read at topurl."""
    rel = urllib.parse.unquote(environ["PATH_INFO"][len("/kojifiles"):]).lstrip("/")
    path = os.path.realpath(os.path.join(topdir, rel))
    if not (path == topdir or path.startswith(topdir + os.sep)) or not os.path.exists(path):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    if os.path.isdir(path):
        body = "".join('<a href="%s">%s</a>\n' % (n, n) for n in sorted(os.listdir(path)))
        start_response("200 OK", [("Content-Type", "text/html")])
        return [body.encode()]
    ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    start_response("200 OK", [("Content-Type", ctype),
                              ("Content-Length", str(os.path.getsize(path)))])
    return _chunks(path)


def _chunks(path):
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                return
            yield block


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--topdir", required=True)
    parser.add_argument("--front-secret")
    opts = parser.parse_args()

    from kojihub import kojixmlrpc

    config_dir = os.path.join(os.path.dirname(opts.config), "hub.conf.d")
    topdir = os.path.realpath(opts.topdir)

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/kojifiles"):
            return files(topdir, environ, start_response)
        if path.rstrip("/") not in ("/kojihub", "/kojihub/ssllogin"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        environ.pop("REMOTE_USER", None)
        remote_user = environ.pop("HTTP_X_KOJI_REMOTE_USER", "")
        if (opts.front_secret and remote_user
                and environ.get("HTTP_X_KOJI_FRONT_SECRET") == opts.front_secret):
            environ["REMOTE_USER"] = remote_user
        environ["koji.hub.ConfigFile"] = opts.config
        environ["koji.hub.ConfigDir"] = config_dir
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = BoundedInput(environ["wsgi.input"], length)
        return kojixmlrpc.application(environ, start_response)

    server = make_server("127.0.0.1", opts.port, application, server_class=ThreadingServer,
                         handler_class=QuietHandler)
    print("hubserver: listening on 127.0.0.1:%d" % opts.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
