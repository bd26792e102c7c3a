"""Apache httpd for the real-koji tests, two ways.

`Hub`: the hub as production runs it (koji's kojihub/app/httpd.conf): mod_wsgi in
httpd's own worker processes (prefork MPM, several processes, the application in the
global group), `/kojihub` the WSGI application from koji's source. `Files`: koji's
topdir as static files at `/kojifiles` (kojid's topurl, dnf's baseurl), on a server
of its own.

`Httpd`: in front of the real hub for the Kerberos tests: Apache with mod_ssl
and mod_auth_gssapi, configured as koji's own kojihub/app/httpd.conf says for GSSAPI
(`<Location /kojihub/ssllogin>`: AuthType GSSAPI, GssapiCredStore keytab:…, Require
valid-user), and mod_proxy passing the requests to the hub (hubserver.py) with the
authenticated principal (REMOTE_USER) in a header only this front end sets.

    https://localhost:PORT/kojihub            the hub; /ssllogin behind SPNEGO
    https://localhost:PORT/broken/kojihub     the same, but its /ssllogin answer loses
                                              the WWW-Authenticate header (a broken
                                              front end: no mutual authentication)

Debian's apache2 (Fedora's httpd) with its own configuration file and ServerRoot in
the run's directory; nothing under /etc/apache2 is read.
"""

import os
import secrets
import shutil
import subprocess

FILES_MODULES = ["mpm_prefork", "authz_core", "log_config", "alias", "mime", "dir",
                 "autoindex"]
HUB_MODULES = FILES_MODULES + ["env", "wsgi"]
MODULES = ["mpm_event", "authn_core", "authz_core", "authz_user", "log_config", "ssl",
           "socache_shmcb", "headers", "proxy", "proxy_http", "auth_gssapi"]


def binary():
    for path in ("/usr/sbin/apache2", "/usr/sbin/httpd"):
        if os.path.exists(path):
            return path
    raise RuntimeError("Apache is not installed (Debian: apache2 libapache2-mod-auth-gssapi)")


def module_dir(module="auth_gssapi", package="libapache2-mod-auth-gssapi"):
    for path in ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules"):
        if os.path.exists(os.path.join(path, "mod_%s.so" % module)):
            return path
    raise RuntimeError("mod_%s is not installed (Debian: %s)" % (module, package))


def load_modules(f, names, modules):
    """LoadModule lines for the modules httpd was not built with."""
    built_in = subprocess.run([binary(), "-l"], stdout=subprocess.PIPE, text=True,
                              check=True).stdout
    for name in names:
        if "mod_%s.c" % name not in built_in:
            f.write("LoadModule %s_module %s/mod_%s.so\n" % (name, modules, name))


def check_and_start(conf, env, log):
    """Check the configuration, then start httpd in the foreground: its process. It
    leads a session of its own: at shutdown httpd signals its whole process group
    (its workers), which must not be the caller's. It runs in its ServerRoot, as a
    daemon runs in /: its workers' user must be able to return to their working
    directory (koji's rmtree does), and the caller's may be a checkout they cannot
    enter."""
    check = subprocess.run([binary(), "-f", conf, "-t"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    if check.returncode != 0:
        raise RuntimeError("httpd -t: %s" % check.stdout)
    return subprocess.Popen([binary(), "-f", conf, "-DFOREGROUND"], env=env,
                            stdout=open(log, "a"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=os.path.dirname(conf))


# The WSGI script: koji's own application from its source (ahead of any koji the
# Python environment has installed), as koji's kojiapp.py imports it.
WSGI_SCRIPT = """import sys
sys.path.insert(0, %r)
from kojihub.kojixmlrpc import application
"""


def common_conf(f, root, port, modules, log, processes):
    """What both of the farm's servers say first: their own ServerRoot, one loopback
    port, the web server's user, PROCESSES prefork workers (no request waits on
    another), MIME types and logs."""
    worker = user()
    f.write("ServerRoot %s\nPidFile %s/httpd.pid\nDefaultRuntimeDir %s\n"
            "Mutex file:%s default\nListen 127.0.0.1:%d\nServerName localhost\n"
            "User %s\nGroup %s\n" % (root, root, root, root, port, worker, worker))
    load_modules(f, modules, module_dir("wsgi", "libapache2-mod-wsgi-py3"))
    if os.path.exists("/etc/mime.types"):
        f.write("TypesConfig /etc/mime.types\n")
    f.write("ErrorLog %s\nLogLevel warn\n"
            "LogFormat \"%%h %%P \\\"%%r\\\" %%>s %%D\" short\nCustomLog %s short\n"
            % (log, log))
    f.write("StartServers %d\nMinSpareServers %d\nMaxSpareServers %d\n"
            "MaxRequestWorkers %d\nMaxConnectionsPerChild 1000\n"
            "Timeout 600\nLimitRequestBody 0\n"
            % (processes, processes, processes * 2, processes * 4))


class Hub:
    """httpd serving the hub with mod_wsgi in PROCESSES worker processes on
    127.0.0.1:PORT/kojihub. The workers run as the web server's user, which owns the
    topdir, as on a production hub, on the system's Python and its packages (the
    distribution's psycopg2, rpm, jsonschema, …, as koji-hub's RPM requires them):
    nothing under the checkout, which that user may not be able to read."""

    def __init__(self, root, port, kojisrc, hub_conf, topdir, log, processes=4):
        self.root, self.port, self.log = root, port, log
        os.makedirs(root, exist_ok=True)
        worker = user()
        for directory, _, names in os.walk(topdir):
            shutil.chown(directory, worker, worker)
            for name in names:
                shutil.chown(os.path.join(directory, name), worker, worker)
        script = os.path.join(root, "kojiapp.py")
        with open(script, "w") as f:
            f.write(WSGI_SCRIPT % kojisrc)
        self.conf = os.path.join(root, "httpd.conf")
        with open(self.conf, "w") as f:
            common_conf(f, root, port, HUB_MODULES, log, processes)
            f.write("Alias /kojihub %s\n<Directory \"%s\">\n    Options ExecCGI\n"
                    "    SetHandler wsgi-script\n    WSGIApplicationGroup %%{GLOBAL}\n"
                    "    WSGIScriptReloading Off\n    Require all granted\n"
                    "    SetEnv koji.hub.ConfigFile %s\n"
                    "    SetEnv koji.hub.ConfigDir %s\n</Directory>\n"
                    % (script, root, hub_conf, os.path.join(os.path.dirname(hub_conf),
                                                          "hub.conf.d")))

    def start(self):
        return check_and_start(self.conf, None, self.log)


class Files:
    """httpd serving koji's topdir read-only at 127.0.0.1:PORT/kojifiles: kojid's
    topurl, dnf's repositories. A server of its own, as build farms keep the files
    (Fedora's kojipkgs) apart from the hub: a hub restarted mid-build does not take
    the packages a build is installing away."""

    def __init__(self, root, port, topdir, log, processes=4):
        self.log = log
        os.makedirs(root, exist_ok=True)
        self.conf = os.path.join(root, "httpd.conf")
        with open(self.conf, "w") as f:
            common_conf(f, root, port, FILES_MODULES, log, processes)
            f.write("Alias /kojifiles \"%s/\"\n<Directory \"%s\">\n"
                    "    Options Indexes SymLinksIfOwnerMatch\n    AllowOverride None\n"
                    "    IndexOptions +NameWidth=*\n    Require all granted\n</Directory>\n"
                    % (topdir, topdir))

    def start(self):
        return check_and_start(self.conf, None, self.log)


def user():
    """The unprivileged user httpd's workers run as."""
    import pwd
    for name in ("www-data", "apache"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    raise RuntimeError("no www-data or apache user for httpd's workers")


class Httpd:
    def __init__(self, root, port, backend_port, cert, key, keytab, env, log):
        self.root, self.port, self.log = root, port, log
        self.secret = secrets.token_hex(16)
        os.makedirs(root)
        worker = user()
        # mod_auth_gssapi's replay cache in the run's directory, the workers' (krb5's
        # default is /var/tmp, where it would outlive the run).
        rcache = os.path.join(root, "rcache")
        os.makedirs(rcache)
        shutil.chown(rcache, worker, worker)
        self.env = dict(env, KRB5RCACHEDIR=rcache)
        # httpd's workers read the keytab, as on a production hub.
        shutil.chown(keytab, group=worker)
        os.chmod(keytab, 0o640)
        gssapi = ("    AuthType GSSAPI\n    AuthName \"GSSAPI Single Sign On Login\"\n"
                  "    GssapiCredStore keytab:%s\n    Require valid-user\n"
                  "    RequestHeader set X-Koji-Remote-User expr=%%{REMOTE_USER}\n" % keytab)
        self.conf = os.path.join(root, "httpd.conf")
        with open(self.conf, "w") as f:
            f.write("ServerRoot %s\nPidFile %s/httpd.pid\nDefaultRuntimeDir %s\n"
                    "Mutex file:%s default\nListen 127.0.0.1:%d\nServerName localhost\n"
                    "User %s\nGroup %s\n" % (root, root, root, root, port, worker, worker))
            load_modules(f, MODULES, module_dir())
            f.write("ErrorLog %s\nLogLevel warn auth_gssapi:info\n"
                    "LogFormat \"%%h %%u \\\"%%r\\\" %%>s\" short\nCustomLog %s short\n"
                    % (log, log))
            f.write("SSLEngine on\nSSLCertificateFile %s\nSSLCertificateKeyFile %s\n"
                    "SSLSessionCache shmcb:%s/ssl_scache(512000)\n" % (cert, key, root))
            # Only this front end says who logged in: the headers are dropped from
            # what clients send and set here, with a secret the hub checks.
            f.write("RequestHeader unset X-Koji-Remote-User early\n"
                    "RequestHeader set X-Koji-Front-Secret %s early\n" % self.secret)
            f.write("ProxyPass /broken/kojihub http://127.0.0.1:%d/kojihub\n"
                    "ProxyPass /kojihub http://127.0.0.1:%d/kojihub\n"
                    % (backend_port, backend_port))
            f.write("<Location /kojihub/ssllogin>\n%s</Location>\n" % gssapi)
            f.write("<Location /broken/kojihub/ssllogin>\n%s"
                    "    Header always unset WWW-Authenticate\n"
                    "    Header unset WWW-Authenticate\n</Location>\n" % gssapi)

    def start(self):
        """httpd's process, which the caller stops."""
        return check_and_start(self.conf, self.env, self.log)
