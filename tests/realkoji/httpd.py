"""A real httpd in front of the real hub for the Kerberos tests: Apache with mod_ssl
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

MODULES = ["mpm_event", "authn_core", "authz_core", "authz_user", "log_config", "ssl",
           "socache_shmcb", "headers", "proxy", "proxy_http", "auth_gssapi"]


def binary():
    for path in ("/usr/sbin/apache2", "/usr/sbin/httpd"):
        if os.path.exists(path):
            return path
    raise RuntimeError("Apache is not installed (Debian: apache2 libapache2-mod-auth-gssapi)")


def module_dir():
    for path in ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules"):
        if os.path.exists(os.path.join(path, "mod_auth_gssapi.so")):
            return path
    raise RuntimeError("mod_auth_gssapi is not installed (Debian: libapache2-mod-auth-gssapi)")


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
        self.root, self.port, self.env, self.log = root, port, env, log
        self.secret = secrets.token_hex(16)
        os.makedirs(root)
        worker = user()
        # httpd's workers read the keytab, as on a production hub.
        shutil.chown(keytab, group=worker)
        os.chmod(keytab, 0o640)
        modules = module_dir()
        built_in = subprocess.run([binary(), "-l"], stdout=subprocess.PIPE, text=True,
                                  check=True).stdout
        gssapi = ("    AuthType GSSAPI\n    AuthName \"GSSAPI Single Sign On Login\"\n"
                  "    GssapiCredStore keytab:%s\n    Require valid-user\n"
                  "    RequestHeader set X-Koji-Remote-User expr=%%{REMOTE_USER}\n" % keytab)
        self.conf = os.path.join(root, "httpd.conf")
        with open(self.conf, "w") as f:
            f.write("ServerRoot %s\nPidFile %s/httpd.pid\nDefaultRuntimeDir %s\n"
                    "Mutex file:%s default\nListen 127.0.0.1:%d\nServerName localhost\n"
                    "User %s\nGroup %s\n" % (root, root, root, root, port, worker, worker))
            for name in MODULES:
                if "mod_%s.c" % name in built_in:
                    continue
                f.write("LoadModule %s_module %s/mod_%s.so\n" % (name, modules, name))
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
        """Check the configuration, then start httpd: its process, which the caller
        stops."""
        check = subprocess.run([binary(), "-f", self.conf, "-t"], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if check.returncode != 0:
            raise RuntimeError("httpd -t: %s" % check.stdout)
        return subprocess.Popen([binary(), "-f", self.conf, "-DFOREGROUND"],
                                     env=self.env, stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT)
