"""Serve a real kojihub (koji's own WSGI application, from koji's source) and koji's
top directory on one loopback port, for the real-koji tests.

    hubserver.py --port P --config HUB.CONF --topdir DIR
                 [--tls-port P --tls CERT KEY [--gssapi-keytab KEYTAB]]

POST /kojihub        the hub (kojihub.kojixmlrpc.application)
GET  /kojifiles/...  koji's topdir, read-only (kojid's topurl, dnf's baseurl)

With --tls-port the same is served over https too. With --gssapi-keytab, https
requests to /kojihub/ssllogin are authenticated as a production hub's httpd does it
with mod_auth_gssapi (koji's docs/source/server_howto.rst): SPNEGO (RFC 4559) with
the service keytab through python-gssapi, REMOTE_USER set to the client principal for
koji's sslLogin, the acceptor's token returned in WWW-Authenticate (mutual
authentication), 401 with `WWW-Authenticate: Negotiate` when there is no token or it
is refused. koji itself maps the principal to a user (AllowedKrbRealms,
ProxyPrincipals, user_krb_principals). While KEYTAB.withhold exists, the acceptor's
token is left out of the answer, as a broken front end would (for the client's
mutual-authentication check).

Production hubs run under httpd + mod_wsgi; Python's wsgiref with a thread per
request is enough for tests. wsgiref hands the application the raw socket as
wsgi.input, with no end: reads are capped at CONTENT_LENGTH here, or the hub would
block reading an upload's body.
"""

import argparse
import base64
import io
import mimetypes
import os
import socketserver
import ssl
import sys
import threading
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


def negotiate(keytab, environ, start_response, app):
    """mod_auth_gssapi's part: accept the SPNEGO token or answer 401."""
    import gssapi
    header = environ.get("HTTP_AUTHORIZATION", "")

    def unauthorized(why, answer=None):
        # Like mod_auth_gssapi: a token the acceptor made (a KRB-ERROR, for one) goes
        # back to the client, which can tell what went wrong from it.
        sys.stderr.write("hubserver: gssapi: %s\n" % why)
        negotiate = "Negotiate"
        if answer:
            negotiate += " " + base64.b64encode(answer).decode()
        start_response("401 Unauthorized", [("WWW-Authenticate", negotiate),
                                            ("Content-Type", "text/plain")])
        return [("Kerberos authentication required: %s\n" % why).encode()]

    if not header.startswith("Negotiate "):
        return unauthorized("no Negotiate token")
    answer = None
    try:
        token = base64.b64decode(header[len("Negotiate "):], validate=True)
        creds = gssapi.Credentials(usage="accept", store={"keytab": keytab})
        ctx = gssapi.SecurityContext(creds=creds, usage="accept")
        answer = ctx.step(token)
        # python-gssapi keeps an error that came with a token for the next access.
        complete = ctx.complete
        principal = str(ctx.initiator_name) if complete else None
    except Exception as e:  # gssapi.exceptions.GSSError, binascii.Error
        return unauthorized(str(e).replace("\n", " "), answer)
    if not complete:
        return unauthorized("the SPNEGO exchange needs more than one round", answer)
    environ["REMOTE_USER"] = principal
    environ["AUTH_TYPE"] = "Negotiate"
    extra = [("WWW-Authenticate", "Negotiate " + base64.b64encode(answer).decode())] \
        if answer else []
    if os.path.exists(keytab + ".withhold"):
        # A test's broken front end: it authenticates the client but drops the token
        # that proves the hub's identity (no mutual authentication).
        extra = []

    def start_with_token(status, headers, exc_info=None):
        return start_response(status, list(headers) + extra, exc_info)
    return app(environ, start_with_token)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--topdir", required=True)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--gssapi-keytab")
    opts = parser.parse_args()

    from kojihub import kojixmlrpc

    config_dir = os.path.join(os.path.dirname(opts.config), "hub.conf.d")
    topdir = os.path.realpath(opts.topdir)

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if (opts.gssapi_keytab and environ.get("wsgi.url_scheme") == "https"
                and path.rstrip("/") == "/kojihub/ssllogin"):
            environ["PATH_INFO"] = "/kojihub"
            return negotiate(opts.gssapi_keytab, environ, start_response, application)
        if path.startswith("/kojifiles"):
            return files(topdir, environ, start_response)
        if path.rstrip("/") != "/kojihub":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        environ["koji.hub.ConfigFile"] = opts.config
        environ["koji.hub.ConfigDir"] = config_dir
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = BoundedInput(environ["wsgi.input"], length)
        return kojixmlrpc.application(environ, start_response)

    if opts.tls_port:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*opts.tls)
        secure = make_server("127.0.0.1", opts.tls_port, application,
                             server_class=ThreadingServer, handler_class=QuietHandler)
        secure.socket = tls.wrap_socket(secure.socket, server_side=True)
        secure.base_environ["HTTPS"] = "on"
        threading.Thread(target=secure.serve_forever, daemon=True).start()
        print("hubserver: https on 127.0.0.1:%d" % opts.tls_port, flush=True)
    server = make_server("127.0.0.1", opts.port, application, server_class=ThreadingServer,
                         handler_class=QuietHandler)
    print("hubserver: listening on 127.0.0.1:%d" % opts.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
