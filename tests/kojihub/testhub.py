#!/usr/bin/env python3
"""A koji hub for nodeimg's tests: koji's own marshalling, koji's rules.

This is a test tool, not koji. koji's hub (kojihub) is not on PyPI and needs
PostgreSQL; this server speaks the same wire protocol with the koji package's own
marshalling (koji.xmlrpcplus: nil, i8, faults, keyword arguments through
koji.decode_args) and enforces the rules nodeimg's client has to get right, as
../shared/reference/koji.md describes koji 1.36:

- sessions: login (password), sslLogin at /ssllogin (client certificate CN),
  subsession, logout;
  header authentication (Koji-Session-Id/-Key/-Callnum); a lower call number is a
  SequenceError (1008), an equal one a RetryError (1009) outside koji's retry
  whitelist; uploads do not store the call number;
- raw uploads (POST with Content-Type application/octet-stream): logged in, name
  without '/' and not starting with '.', directory not starting with '..', a
  directory belongs to its first uploader, offset 0 on an existing file needs
  overwrite, overwrite truncates at the offset, without it the file length must be
  offset + size afterwards; the answer carries size and the chunk's adler32;
- checkUpload(path, name, verify=None): None or {size, mtime[, sumlength, hexdigest]};
- CGInitBuild / CGImport / CGRefundBuild with the metadata rules of CG_Importer
  (required keys, typeinfo, buildroot references, outputs re-hashed against the
  uploaded files), tagBuild, getBuild, multiCall, getLoggedInUser, echo.

Test hooks (command-line options) inject what real hubs do now and then: a
connection cut in the middle of an upload, a fault from a method, session expiry,
ServerOffline. `_testState` returns what happened, for assertions.

What koji accepts is proven against the real hub (tests/realkoji.rs), not here: this
double does not know that CGImport takes an RPM only into the build its SOURCERPM
names, that tagBuild is a task kojid runs and that a tag takes only the packages on
its list, that koji drops RPM components it does not know, or that a FAILED NVR is
recycled with its build id. It stays for the faults a real hub cannot be made to show.

Run: python testhub.py --workdir DIR [--tls CERT KEY CA] [--user NAME:PASSWORD] ...
It prints "listening on PORT" once it accepts connections.
"""

import argparse
import hashlib
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import koji
from koji import xmlrpcplus

RETRY_WHITELIST = {
    "host.taskWait", "host.taskUnwait", "host.taskSetWait", "host.updateHost",
    "host.setBuildRootState", "repoExpire", "repoDelete", "repoProblem",
}


class HubFault(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def fault(cls_name, message):
    codes = {
        "GenericError": 1000, "LockError": 1001, "AuthError": 1002,
        "ActionNotAllowed": 1004, "AuthExpired": 1007, "SequenceError": 1008,
        "RetryError": 1009, "ServerOffline": 1014, "ParameterError": 1019,
        "ImportError": 1020,
    }
    return HubFault(codes[cls_name], message)


class Hub:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.users = dict(u.split(":", 1) for u in args.user)
        self.cg_users = {}
        for spec in args.cg:
            cg, user = spec.split(":", 1)
            self.cg_users.setdefault(cg, set()).add(user)
        self.sessions = {}
        self.next_session = 100
        self.builds = {}
        self.next_build = 1
        self.tags = {}
        self.uploads = []
        self.calls = []
        self.upload_requests = 0
        self.dropped = False
        self.faults = {}
        for spec in args.fault:
            method, code, message = spec.split(":", 2)
            self.faults[method] = (int(code), message)
        self.offline_left = args.offline_times
        self.calls_since_login = {}

    # -- sessions -----------------------------------------------------------------
    def new_session(self, user):
        sid = self.next_session
        self.next_session += 1
        key = "%d-%s" % (sid, secrets.token_hex(10))
        self.sessions[sid] = {"user": user, "key": key, "callnum": None, "expired": False,
                              "calls": 0}
        return {"session-id": sid, "session-key": key, "header-auth": True}

    def session_of(self, headers, method, upload=False):
        sid = headers.get("koji-session-id")
        if sid is None:
            return None
        session = self.sessions.get(int(sid))
        if session is None or session["key"] != headers.get("koji-session-key"):
            raise fault("AuthError", "Invalid session or session key")
        callnum = headers.get("koji-session-callnum")
        if callnum is not None:
            callnum = int(callnum)
            last = session["callnum"]
            if last is not None and callnum < last:
                raise fault("SequenceError", "%d < %d (session %s)" % (callnum, last, sid))
            if last is not None and callnum == last and method not in RETRY_WHITELIST \
                    and not upload:
                raise fault("RetryError", "unable to retry call %d (method %s) for session %s"
                            % (callnum, method, sid))
            if not upload:
                session["callnum"] = callnum
        if session["expired"] and method not in ("login", "sslLogin"):
            raise fault("AuthExpired", "session %s expired" % sid)
        session["calls"] += 1
        if method in ("login", "sslLogin"):
            return session
        if self.args.expire_after and session["calls"] > self.args.expire_after \
                and not session.get("renewed"):
            session["expired"] = True
            raise fault("AuthExpired", "session %s expired" % sid)
        return session

    # -- paths --------------------------------------------------------------------
    def upload_path(self, dirpath, name, user, create=True):
        if "/" in name or name.startswith(".") or not name:
            raise fault("GenericError", "Invalid upload filename: %s" % name)
        if dirpath.startswith("..") or dirpath.startswith("/"):
            raise fault("GenericError", "Invalid upload directory: %s" % dirpath)
        if any(part == ".." for part in dirpath.split("/")):
            raise fault("GenericError", "Invalid upload directory: %s" % dirpath)
        directory = os.path.join(self.args.workdir, dirpath)
        owner = os.path.join(directory, ".user")
        if create:
            os.makedirs(directory, exist_ok=True)
            if not os.path.exists(owner):
                with open(owner, "w") as f:
                    f.write(user)
        if os.path.exists(owner):
            with open(owner) as f:
                if f.read() != user:
                    raise fault("GenericError", "not owner of upload directory %s" % dirpath)
        return os.path.join(directory, name)

    # -- methods ------------------------------------------------------------------
    def dispatch(self, path, headers, method, args, kwargs):
        self.calls.append(method)
        if self.offline_left > 0:
            self.offline_left -= 1
            raise fault("ServerOffline", "server is offline")
        if method in self.faults:
            code, message = self.faults[method]
            raise HubFault(code, message)
        if method == "sslLogin":
            if not path.endswith("/ssllogin"):
                raise fault("AuthError", "sslLogin must be posted to /ssllogin")
            user = headers.get("x-test-client-cn")
            if not user:
                raise fault("AuthError", "no client certificate")
            return self.new_session(user)
        if method == "login":
            user, password = args[0], args[1]
            if kwargs.get("renew"):
                session = self.session_of(headers, method)
                if session:
                    session["expired"] = False
                    session["renewed"] = True
                    # A renewed session starts counting again (koji's client resets to 0).
                    session["callnum"] = None
                    session["key"] = "%s-%s" % (session["key"].split("-")[0],
                                                secrets.token_hex(10))
                    sid = int(headers["koji-session-id"])
                    return {"session-id": sid, "session-key": session["key"],
                            "header-auth": True}
            if self.users.get(user) != password:
                raise fault("AuthError", "invalid username or password: %s" % user)
            return self.new_session(user)
        session = self.session_of(headers, method)
        if method == "multiCall":
            results = []
            for call in args[0]:
                try:
                    sub_args, sub_kwargs = koji.decode_args(*call["params"])
                    results.append([self.method(session, call["methodName"], sub_args,
                                                sub_kwargs)])
                except HubFault as e:
                    results.append({"faultCode": e.code, "faultString": e.message,
                                    "traceback": []})
            return results
        return self.method(session, method, args, kwargs)

    def method(self, session, method, args, kwargs):
        user = session["user"] if session else None
        if method == "logout":
            if session:
                session["expired"] = True
            return None
        if method == "echo":
            return [list(args), kwargs]
        if method == "getAPIVersion":
            return koji.API_VERSION
        if method == "getLoggedInUser":
            return {"name": user} if user else None
        if method == "_testState":
            return self.state()
        if method == "_testMarshal":
            return _Raw()
        if method == "checkUpload":
            return self.check_upload(user, *args, **kwargs)
        if user is None:
            raise fault("ActionNotAllowed", "%s requires a login" % method)
        if method == "subsession":
            # koji's createSession(master=…): the same user, its own key and calls.
            return self.new_session(user)
        if method == "CGInitBuild":
            return self.cg_init(user, *args, **kwargs)
        if method == "CGImport":
            return self.cg_import(user, *args, **kwargs)
        if method == "CGRefundBuild":
            return self.cg_refund(user, *args, **kwargs)
        if method == "tagBuild":
            tag, build = args[0], args[1]
            self.tags.setdefault(tag, []).append(build)
            return 4242
        if method == "getBuild":
            return self.builds.get(args[0])
        raise fault("GenericError", "Invalid method: %s" % method)

    def check_upload(self, user, path, name, verify=None, tail=None, volume=None):
        target = self.upload_path(path, name, user or "", create=False)
        if not os.path.exists(target):
            return None
        st = os.stat(target)
        result = {"size": st.st_size, "mtime": st.st_mtime}
        if verify:
            with open(target, "rb") as f:
                data = f.read()
            if verify == "adler32":
                digest = "%08x" % (zlib.adler32(data) & 0xffffffff)
            elif verify in ("sha256", "md5"):
                digest = hashlib.new(verify, data).hexdigest()
            else:
                raise fault("GenericError", "Unsupported verify type: %s" % verify)
            result.update({"sumlength": len(data), "hexdigest": digest})
        return result

    def cg_init(self, user, cg, data):
        if user not in self.cg_users.get(cg, set()):
            raise fault("GenericError", "User %s is not authorized for content generator %s"
                        % (user, cg))
        nvr = "%(name)s-%(version)s-%(release)s" % data
        for build in self.builds.values():
            if build["nvr"] == nvr and build["state"] in ("BUILDING", "COMPLETE"):
                raise fault("GenericError", "Build already exists: %s" % nvr)
        build_id = self.next_build
        self.next_build += 1
        token = secrets.token_hex(32)
        self.builds[build_id] = {"id": build_id, "nvr": nvr, "state": "BUILDING", "cg": cg,
                                 "token": token, "outputs": [], "metadata": None}
        return {"build_id": build_id, "token": token}

    def cg_refund(self, user, cg, build_id, token, state=3):
        build = self.builds.get(build_id)
        if build is None or build["token"] != token or build["cg"] != cg:
            raise fault("GenericError", "Invalid token or build for refund")
        if build["state"] != "BUILDING":
            raise fault("GenericError", "Build %s is not BUILDING" % build_id)
        if state not in (3, 4):
            raise fault("GenericError", "Invalid refund state %s" % state)
        build["state"] = {3: "FAILED", 4: "CANCELED"}[state]
        return None

    def cg_import(self, user, metadata, directory, token=None):
        if isinstance(metadata, str) and not metadata.lstrip().startswith("{"):
            path = self.upload_path(directory, metadata, user, create=False)
            with open(path) as f:
                metadata = json.load(f)
        elif isinstance(metadata, str):
            metadata = json.loads(metadata)
        if metadata.get("metadata_version") != 0:
            raise fault("GenericError", "No such metadata version: %r"
                        % metadata.get("metadata_version"))
        b = metadata["build"]
        for key in ("name", "version", "release", "source", "extra", "start_time", "end_time"):
            if key not in b:
                raise fault("GenericError", "Missing build field: %s" % key)
        typeinfo = b["extra"].get("typeinfo", {})
        if not typeinfo and not any(k in b["extra"] for k in ("image", "maven", "win")):
            raise fault("GenericError", "No typeinfo in build extra")
        build = self.builds.get(b.get("build_id"))
        if build is None or build["token"] != token:
            raise fault("GenericError", "Invalid token for build %s" % b.get("build_id"))
        if build["state"] != "BUILDING":
            raise fault("GenericError", "Build %s is not BUILDING" % build["id"])
        nvr = "%(name)s-%(version)s-%(release)s" % b
        if nvr != build["nvr"]:
            raise fault("GenericError", "Build NVR %s does not match reservation %s"
                        % (nvr, build["nvr"]))
        roots = {}
        for br in metadata["buildroots"]:
            for key in ("id", "host", "content_generator", "container", "tools", "components"):
                if key not in br:
                    raise fault("GenericError", "Missing buildroot field: %s" % key)
            if br["content_generator"]["name"] != build["cg"]:
                raise fault("GenericError", "Only one content generator per import")
            for comp in br["components"]:
                self.check_component(comp)
            roots[br["id"]] = 0
        outputs = []
        for out in metadata["output"]:
            for key in ("buildroot_id", "filename", "filesize", "checksum", "checksum_type",
                        "type", "arch"):
                if key not in out:
                    raise fault("GenericError", "Missing output field: %s" % key)
            if out["buildroot_id"] not in roots:
                raise fault("GenericError", "No such buildroot: %r" % out["buildroot_id"])
            roots[out["buildroot_id"]] += 1
            path = self.upload_path(directory, out["filename"], user, create=False)
            if not os.path.exists(path):
                raise fault("GenericError", "No such file: %s" % out["filename"])
            size = os.path.getsize(path)
            if size != out["filesize"]:
                raise fault("GenericError", "File size %s for %s (expected %s) doesn't match. "
                            "Corrupted upload?" % (size, out["filename"], out["filesize"]))
            if out["checksum_type"] not in ("md5", "sha256"):
                raise fault("GenericError", "Unsupported checksum type")
            with open(path, "rb") as f:
                digest = hashlib.new(out["checksum_type"], f.read()).hexdigest()
            if digest != out["checksum"]:
                raise fault("GenericError", "File checksum mismatch for %s" % out["filename"])
            if out["type"] == "rpm":
                if not re.match(r"^.+-[^-]+-[^-]+\.[^.]+\.rpm$", out["filename"]):
                    raise fault("GenericError", "Invalid rpm filename: %s" % out["filename"])
            elif out["type"] != "log":
                btype = out["type"]
                if btype not in typeinfo:
                    raise fault("GenericError", "No typeinfo for: %s" % btype)
                if btype == "image" and "arch" not in out.get("extra", {}).get("image", {}):
                    raise fault("GenericError", "Image output %s has no extra.image.arch"
                                % out["filename"])
                if not out["filename"].endswith(".squashfs"):
                    raise fault("GenericError", "Unsupported file type: %s" % out["filename"])
                for comp in out.get("components", []):
                    self.check_component(comp)
            outputs.append(out)
        for br_id, used in roots.items():
            if not used:
                raise fault("GenericError", "Buildroot %s is not used by any output" % br_id)
        build["state"] = "COMPLETE"
        build["outputs"] = outputs
        build["metadata"] = metadata
        return {"id": build["id"], "nvr": nvr}

    @staticmethod
    def check_component(comp):
        if comp.get("type") != "rpm":
            raise fault("GenericError", "Unsupported component type: %r" % comp.get("type"))
        for key in ("name", "version", "release", "epoch", "arch", "sigmd5", "signature"):
            if key not in comp:
                raise fault("GenericError", "Missing component field: %s" % key)
        if "location" in comp or "id" in comp:
            raise fault("GenericError", "Component with location or id")

    # -- uploads ------------------------------------------------------------------
    def handle_upload(self, handler, query, headers):
        session = self.session_of(headers, "rawUpload", upload=True)
        if session is None:
            raise fault("ActionNotAllowed", "you must be logged-in to upload")
        q = {k: v[0] for k, v in query.items()}
        name, dirpath = q.get("filename", ""), q.get("filepath", "")
        verify = q.get("fileverify", "")
        overwrite = bool(q.get("overwrite"))
        offset = int(q.get("offset", "0"))
        target = self.upload_path(dirpath, name, session["user"])
        length = int(headers.get("content-length", "0"))
        self.upload_requests += 1
        record = {"name": name, "offset": offset, "size": length, "overwrite": overwrite,
                  "callnum": headers.get("koji-session-callnum"),
                  "session": headers.get("koji-session-id")}
        if os.path.islink(target) or (os.path.exists(target) and not os.path.isfile(target)):
            raise fault("GenericError", "destination not a file: %s" % target)
        if offset == 0 and os.path.exists(target) and not overwrite:
            raise fault("GenericError", "upload path exists: %s" % target)
        drop = (self.args.drop_upload_after is not None and not self.dropped
                and self.upload_requests > self.args.drop_upload_after)
        mode = "r+b" if os.path.exists(target) else "wb"
        with open(target, mode) as f:
            if offset == -1:
                f.seek(0, os.SEEK_END)
                offset = f.tell()
            else:
                if overwrite:
                    f.truncate(offset)
                f.seek(offset)
            remaining = length
            adler = 1
            if drop:
                remaining = length // 2
            while remaining > 0:
                piece = handler.rfile.read(min(65536, remaining))
                if not piece:
                    break
                f.write(piece)
                adler = zlib.adler32(piece, adler)
                remaining -= len(piece)
            if drop:
                self.dropped = True
                record["dropped"] = True
                self.uploads.append(record)
                f.flush()
                raise ConnectionAbortedError("test hook: connection cut mid-upload")
            f.flush()
            size = length
            if not overwrite:
                end = f.seek(0, os.SEEK_END)
                if end != offset + size:
                    raise fault("GenericError", "Incorrect upload length for %s" % target)
        self.uploads.append(record)
        result = {"size": size, "fileverify": verify, "offset": offset}
        if verify == "adler32":
            result["hexdigest"] = "%08x" % (adler & 0xffffffff)
        return result

    def state(self):
        builds = {str(k): {key: v[key] for key in ("id", "nvr", "state", "outputs",
                                                   "metadata")}
                  for k, v in self.builds.items()}
        return {"uploads": self.uploads, "builds": builds, "tags": self.tags,
                "calls": self.calls}


class _Raw:
    """Marker: _testMarshal answers with a hand-written body."""


# What a Python-marshalled koji response can look like: base64 wrapped at 76 columns
# (xmlrpc.client's encodebytes), escaped entities, CDATA, a datetime, nil, i8, large
# integers as strings, an untyped string value.
def marshal_sample():
    import base64
    blob = bytes(range(256)) * 2
    wrapped = base64.encodebytes(blob).decode()
    return ("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><struct>\n"
            "<member>\n<name>blob</name>\n<value><base64>\n%s</base64></value>\n</member>\n"
            "<member>\n<name>text</name>\n<value><string>a &lt;b&gt; &amp; &quot;c&quot;"
            " &#233;</string></value>\n</member>\n"
            "<member>\n<name>cdata</name>\n<value><string><![CDATA[x < y & z]]></string>"
            "</value>\n</member>\n"
            "<member>\n<name>when</name>\n<value><dateTime.iso8601>20261126T02:12:34"
            "</dateTime.iso8601></value>\n</member>\n"
            "<member>\n<name>nothing</name>\n<value><nil/></value>\n</member>\n"
            "<member>\n<name>big</name>\n<value><i8>9007199254740993</i8></value>\n</member>\n"
            "<member>\n<name>size</name>\n<value><string>12345678901234</string></value>\n"
            "</member>\n"
            "<member>\n<name>untyped</name>\n<value>plain</value>\n</member>\n"
            "</struct></value>\n</param>\n</params>\n</methodResponse>\n") % wrapped


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY every response waits
    # for the client's delayed ACK (40 ms), which no real hub does.
    disable_nagle_algorithm = True
    hub = None

    def log_message(self, fmt, *args):
        if self.hub.args.verbose:
            sys.stderr.write("testhub: " + fmt % args + "\n")

    def do_GET(self):
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def client_cn(self):
        try:
            cert = self.connection.getpeercert()
        except AttributeError:
            return None
        if not cert:
            return None
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return None

    def do_POST(self):
        url = urlparse(self.path)
        # HTTP header names are case-insensitive: keep them lower-case.
        headers = {k.lower(): v for k, v in self.headers.items()}
        cn = self.client_cn()
        headers.pop("x-test-client-cn", None)
        if cn:
            headers["x-test-client-cn"] = cn
        hub = self.hub
        try:
            with hub.lock:
                if self.headers.get("Content-Type") == "application/octet-stream":
                    result = hub.handle_upload(self, parse_qs(url.query), headers)
                    body = xmlrpcplus.dumps((result,), methodresponse=1, allow_none=1)
                else:
                    length = int(self.headers.get("content-length", "0"))
                    data = self.rfile.read(length)
                    params, method = xmlrpcplus.loads(data)
                    args, kwargs = koji.decode_args(*params)
                    result = hub.dispatch(url.path, headers, method, list(args), kwargs)
                    if isinstance(result, _Raw):
                        body = marshal_sample()
                    else:
                        body = xmlrpcplus.dumps((result,), methodresponse=1, allow_none=1)
        except ConnectionAbortedError:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        except HubFault as e:
            body = xmlrpcplus.dumps(xmlrpcplus.Fault(e.code, e.message), methodresponse=1,
                                    allow_none=1)
        except Exception as e:  # koji answers unexpected errors as code 1
            body = xmlrpcplus.dumps(xmlrpcplus.Fault(1, "%s: %s" % (type(e).__name__, e)),
                                    methodresponse=1, allow_none=1)
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Koji-Version", "1.36.1")
        self.end_headers()
        self.wfile.write(data)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls", nargs=3, metavar=("CERT", "KEY", "CLIENT_CA"))
    p.add_argument("--user", action="append", default=[], help="NAME:PASSWORD")
    p.add_argument("--cg", action="append", default=[], help="CG:USER")
    p.add_argument("--drop-upload-after", type=int,
                   help="cut the connection in the middle of the upload request after N")
    p.add_argument("--fault", action="append", default=[], help="METHOD:CODE:MESSAGE")
    p.add_argument("--expire-after", type=int, default=0,
                   help="expire a session after N calls (until it logs in with renew)")
    p.add_argument("--offline-times", type=int, default=0,
                   help="answer the first N calls with ServerOffline")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    Handler.hub = Hub(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls:
        cert, key, client_ca = args.tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("listening on %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
