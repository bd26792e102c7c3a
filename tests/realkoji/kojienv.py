"""A real koji on this machine, for the real-koji tests, shaped as admins run one:
PostgreSQL from Debian; the hub from koji's own source (with nodeimg's hub plugin)
under Apache httpd with mod_wsgi in several worker processes (httpd.Hub, as koji's
kojihub/app/httpd.conf does it); and on request a build farm: kojira making the build
tags' repositories from the hub's repo queue, and several kojid hosts (each with
nodeimg's builder plugin and mock from its source, in a mount namespace of its own).

Sources: $KOJI_SRC / $MOCK_SRC (a tarball or an unpacked tree), else the snapshots in
../shared/vendor/ beside the repository. They are unpacked into a temporary directory;
nothing of them is kept in the project.

Everything lives under one directory in /var/tmp (removed at the end): the database,
koji's topdir, configuration and logs. The hub and koji's files share one loopback
port: http://127.0.0.1:PORT/kojihub and http://127.0.0.1:PORT/kojifiles.

With Kerberos (`serve --kerberos`), a real MIT KDC (kdc.py) runs too, and a real
httpd (httpd.py: mod_ssl, mod_auth_gssapi with the keytab of
HTTP/localhost@NODEIMG.TEST, mod_proxy) serves the hub at
https://localhost:TLSPORT/kojihub.
"""

import glob
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

import koji

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV_PYTHON = os.path.join(REPO, ".venv", "bin", "python")
KOJI_CLI = os.path.join(REPO, ".venv", "bin", "koji")
ADMIN, ADMIN_PASSWORD = "kojiadmin", "admin-secret-1"
HOST_PASSWORD = "host-secret-3"
# The farm's builders: name and the arches koji gives each (an x86_64 host builds
# i686 natively, as Fedora's builders do).
HOSTS = [("builder1.test", ["x86_64", "i686"]), ("builder2.test", ["x86_64", "i686"])]
KOJIRA, KOJIRA_PASSWORD = "kojira", "kojira-secret-8"
# One name for a Node release, whichever way it reaches koji: the update package's.
UPDATE_NAME = "ovirt-node-ng-image-update"
# mock's group and unprivileged user: the host's own when it has them (every machine
# with mock installed has the group), else made inside each kojid's mount namespace.
MOCK_GROUP, MOCK_USER = "mock", "mockbuild"
USER, USER_PASSWORD = "releng", "releng-secret-2"
# Kerberos principals (NAME@NODEIMG.TEST): the hub's proxy (ProxyPrincipals), one the
# hub has no user for, and a robot logging in from a keytab with short tickets.
KRB_PROXY, KRB_STRANGER, KRB_ROBOT = "kojiweb", "stranger", "robot"


class Unavailable(Exception):
    """What a real koji needs is not on this machine; the message says what."""


def source(env, pattern):
    """The source tree or tarball: $ENV, else ../shared/vendor/PATTERN."""
    given = os.environ.get(env)
    if given:
        return given
    found = sorted(glob.glob(os.path.join(REPO, "..", "shared", "vendor", pattern)))
    if not found:
        raise Unavailable("no %s: set %s to koji's source (a tarball or a tree), or "
                          "put the snapshot in ../shared/vendor/" % (pattern, env))
    return found[-1]


def unpack(src, into, marker):
    """An unpacked tree containing MARKER (a relative path)."""
    if os.path.isdir(src):
        return src
    with tarfile.open(src) as tar:
        for member in tar.getmembers():
            if member.name.startswith("/") or ".." in member.name.split("/"):
                raise Unavailable("%s: unsafe member %s" % (src, member.name))
        tar.extractall(into)
    for root, dirs, _ in os.walk(into):
        if os.path.exists(os.path.join(root, marker)):
            return root
        dirs.sort()
    raise Unavailable("%s has no %s" % (src, marker))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """Whether something accepts connections on 127.0.0.1:PORT."""
    socket.create_connection(("127.0.0.1", port), 1).close()
    return True


def wait_for(what, check, timeout=60, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %s before it was ready%s"
                               % (what, proc.returncode, tail(log)))
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError("%s was not ready in %s s%s" % (what, timeout, tail(log)))


def tail(path, lines=30):
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return "\n--- last lines of %s ---\n%s" % (path, "".join(f.readlines()[-lines:]))


def pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise Unavailable("PostgreSQL is not installed (Debian: postgresql)")
    return os.path.dirname(found[-1])


class RealKoji:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="nodeimg-realkoji-", dir="/var/tmp")
        os.chmod(self.root, 0o755)
        self.procs = {}
        self.logs = os.path.join(self.root, "logs")
        os.makedirs(self.logs)
        try:
            self.kojisrc = unpack(source("KOJI_SRC", "koji-*.tar.gz"),
                                  os.path.join(self.root, "src"), "kojihub/kojixmlrpc.py")
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        self.topdir = os.path.join(self.root, "koji")
        for sub in ("packages", "repos", "repos-dist", "work", "scratch"):
            os.makedirs(os.path.join(self.topdir, sub))
        self.port = free_port()
        self.kdc = None
        self.httpd = None
        self.hub_url = "http://127.0.0.1:%d/kojihub" % self.port
        # The files on a server of their own (httpd.Files), except behind the Kerberos
        # tests' front end, whose hub server serves both.
        self.files_port = free_port()
        self.topurl = "http://127.0.0.1:%d/kojifiles" % self.files_port
        self.weburl = "http://127.0.0.1:%d/koji" % self.port

    # -- PostgreSQL --------------------------------------------------------------

    def start_db(self):
        bindir = pg_bindir()
        self.pgdata = os.path.join(self.root, "pg")
        os.makedirs(self.pgdata)
        shutil.chown(self.pgdata, "postgres", "postgres")
        self.pgport = free_port()
        as_pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run(as_pg + [os.path.join(bindir, "initdb"), "-D", self.pgdata, "-U", "koji",
                                "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        log = os.path.join(self.logs, "postgres.log")
        self.procs["postgres"] = subprocess.Popen(
            as_pg + [os.path.join(bindir, "postgres"), "-D", self.pgdata, "-p", str(self.pgport),
                     "-k", self.pgdata, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                     "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=open(log, "w"), stderr=subprocess.STDOUT)
        wait_for("postgres", lambda: subprocess.run(
            [os.path.join(bindir, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.pgport)]
        ).returncode == 0, proc=self.procs["postgres"], log=log)
        subprocess.run([os.path.join(bindir, "createdb"), "-h", "127.0.0.1", "-p",
                        str(self.pgport), "-U", "koji", "koji"], check=True)
        self.psql_file(os.path.join(self.kojisrc, "schemas", "schema.sql"))
        self.sql("INSERT INTO users (name, password, status, usertype) VALUES ('%s', '%s', 0, 0)"
                 % (ADMIN, ADMIN_PASSWORD))
        self.sql("INSERT INTO user_perms (user_id, perm_id, creator_id) "
                 "SELECT u.id, p.id, u.id FROM users u, permissions p "
                 "WHERE u.name = '%s' AND p.name = 'admin'" % ADMIN)
        self.sql("INSERT INTO users (name, password, status, usertype) VALUES ('%s', '%s', 0, 0)"
                 % (USER, USER_PASSWORD))

    def psql(self, args, **kw):
        return subprocess.run([os.path.join(pg_bindir(), "psql"), "-h", "127.0.0.1", "-p",
                               str(self.pgport), "-U", "koji", "-d", "koji", "-v",
                               "ON_ERROR_STOP=1", "-q"] + args, check=True,
                              stdout=subprocess.PIPE, text=True, **kw)

    def psql_file(self, path):
        self.psql(["-f", path])

    def sql(self, statement):
        """Run SQL (our own fixed statements only); the rows, tab-separated."""
        return self.psql(["-A", "-t", "-F", "\t", "-c", statement]).stdout.strip()

    # -- the hub -----------------------------------------------------------------

    def start_hub(self):
        confdir = os.path.join(self.root, "hub")
        os.makedirs(os.path.join(confdir, "hub.conf.d"))
        # The hub's workers (the web server's user) read the plugin: a copy in the
        # run's directory, as the RPM installs it, whatever the checkout's permissions.
        plugins = os.path.join(confdir, "plugins")
        os.makedirs(plugins)
        shutil.copy(os.path.join(REPO, "plugin", "hub", "nodeimg.py"), plugins)
        self.hub_conf = os.path.join(confdir, "hub.conf")
        with open(self.hub_conf, "w") as f:
            f.write("[hub]\nDBName = koji\nDBUser = koji\nDBHost = 127.0.0.1\n"
                    "DBPort = %d\nKojiDir = %s\nCheckClientIP = False\n"
                    "LoginCreatesUser = Off\nDisableNotifications = True\n"
                    "LogLevel = INFO\nRunInterval = 2\nRepoLag = 0\n"
                    "PluginPath = %s\nPlugins = nodeimg\n"
                    % (self.pgport, self.topdir, plugins))
            if self.kdc is not None:
                import kdc
                f.write("AllowedKrbRealms = %s\nProxyPrincipals = %s\n"
                        % (kdc.REALM, KRB_PROXY + "@" + kdc.REALM))
        self.start_hubserver()
        self.admin = self.session(ADMIN, ADMIN_PASSWORD)

    def start_hubserver(self):
        """The hub: under httpd and mod_wsgi, or, behind the Kerberos tests' own front
        end (which passes the principal in a header), a wsgiref server."""
        log = os.path.join(self.logs, "hub.log")
        if self.httpd is None:
            import httpd
            if "files" not in self.procs:
                files = httpd.Files(os.path.join(self.root, "files-httpd"), self.files_port,
                                    self.topdir, os.path.join(self.logs, "files.log"))
                self.procs["files"] = files.start()
                wait_for("the files' httpd", lambda: listening(self.files_port),
                         proc=self.procs["files"], log=files.log)
            hub = httpd.Hub(os.path.join(self.root, "hub-httpd"), self.port, self.kojisrc,
                            self.hub_conf, self.topdir, log)
            self.procs["hub"] = hub.start()
        else:
            env = dict(os.environ, PYTHONPATH=self.kojisrc)
            cmd = [VENV_PYTHON, os.path.join(HERE, "hubserver.py"), "--port", str(self.port),
                   "--config", self.hub_conf, "--topdir", self.topdir,
                   "--front-secret", self.httpd.secret]
            self.procs["hub"] = subprocess.Popen(cmd, env=env, stdout=open(log, "a"),
                                                 stderr=subprocess.STDOUT)

        def answers():
            return koji.ClientSession(self.hub_url).getAPIVersion() > 0
        wait_for("kojihub", answers, proc=self.procs["hub"], log=log)

    # -- Kerberos --------------------------------------------------------------------

    def start_kdc(self):
        """The KDC with its principals and keytabs, the hub's TLS certificate, and httpd
        in front of the hub (before the hub starts: it needs httpd's secret)."""
        import kdc
        # Behind this front end the hub's server serves koji's files too.
        self.topurl = "http://127.0.0.1:%d/kojifiles" % self.port
        krb = os.path.join(self.root, "krb5")
        self.kdc = kdc.Kdc(krb, free_port(), os.path.join(self.logs, "kdc.log"))
        self.procs["kdc"] = self.kdc.start()
        wait_for("krb5kdc", lambda: listening(self.kdc.port), proc=self.procs["kdc"],
                 log=self.kdc.log)
        self.hub_keytab = os.path.join(krb, "hub.keytab")
        self.kdc.add_service("HTTP/localhost", self.hub_keytab)
        self.krb = {"realm": kdc.REALM, "krb5_conf": self.kdc.krb5_conf, "kdc_log": self.kdc.log}
        for name, password in ((USER, USER_PASSWORD), (KRB_PROXY, "proxy-secret-4"),
                               (KRB_STRANGER, "stranger-secret-5"),
                               (KRB_ROBOT, "robot-secret-6")):
            principal = self.kdc.add_user(name, password)
            keytab = os.path.join(krb, "%s.keytab" % name)
            self.kdc.export_keytab(principal, keytab)
            self.krb[name] = {"principal": principal, "password": password, "keytab": keytab}
        # The robot's tickets last seconds: its sessions outlive them.
        self.kdc.max_life(self.krb[KRB_ROBOT]["principal"], "4 seconds")
        alien = self.kdc.add_user("alien", "alien-secret-7", realm=kdc.OTHER_REALM)
        self.krb["alien"] = {"principal": alien, "password": "alien-secret-7"}
        # httpd with mod_ssl and mod_auth_gssapi in front of the hub, as koji's own
        # httpd.conf sets a Kerberos hub up.
        import httpd
        self.tls_ca, tls_cert, tls_key = make_tls(os.path.join(self.root, "tls"))
        tls_port = free_port()
        self.httpd = httpd.Httpd(os.path.join(self.root, "httpd"), tls_port, self.port,
                                 tls_cert, tls_key, self.hub_keytab, self.kdc.env(),
                                 os.path.join(self.logs, "httpd.log"))
        self.procs["httpd"] = self.httpd.start()
        wait_for("httpd", lambda: listening(tls_port), proc=self.procs["httpd"],
                 log=self.httpd.log)
        self.hub_https = "https://localhost:%d/kojihub" % tls_port

    def map_principals(self):
        """koji users for the principals, as an admin sets them up (createUser with
        krb_principal; the existing user's principal added)."""
        self.sql("INSERT INTO user_krb_principals (user_id, krb_principal) SELECT id, '%s' "
                 "FROM users WHERE name = '%s'" % (self.krb[USER]["principal"], USER))
        self.admin.createUser(KRB_ROBOT, krb_principal=self.krb[KRB_ROBOT]["principal"])

    def rekey(self, name):
        """A new random key for principal NAME: keytabs made before hold the old one."""
        import kdc
        self.kdc.kadmin(kdc.REALM, "cpw -randkey %s" % self.krb[name]["principal"])

    def expire_sessions(self, user):
        """What a hub does to a session past SessionRenewalTimeout: the next call with
        it faults with AuthExpired."""
        self.sql("UPDATE sessions SET expired = TRUE WHERE closed = FALSE AND user_id = "
                 "(SELECT id FROM users WHERE name = '%s')" % user)

    def wait_session(self, user, timeout=120):
        """Return once USER has an open session on the hub."""
        query = ("SELECT count(*) FROM sessions WHERE closed = FALSE AND expired = FALSE AND "
                 "user_id = (SELECT id FROM users WHERE name = '%s')" % user)
        wait_for("a session of %s" % user, lambda: int(self.sql(query)) > 0, timeout=timeout)

    def stop_hubserver(self):
        self.stop("hub")

    def session(self, user, password):
        s = koji.ClientSession(self.hub_url, {"max_retries": 2, "retry_interval": 1,
                                              "user": user, "password": password})
        s.login()
        return s

    # -- koji's CLI, as a release engineer runs it ----------------------------------

    def cli_config(self):
        path = os.path.join(self.root, "koji.conf")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("[realkoji]\nserver = %s\nweburl = %s\ntopurl = %s\n"
                        "authtype = password\nplugin_paths = %s\npoll_interval = 1\n"
                        % (self.hub_url, self.weburl, self.topurl,
                           os.path.join(REPO, "plugin", "cli")))
        return path

    def cli(self, *args, user=USER, password=USER_PASSWORD, check=True, timeout=600):
        """`koji -p realkoji ARGS` with the CLI from PyPI and nodeimg's CLI plugin."""
        cmd = [KOJI_CLI, "-c", self.cli_config(), "-p", "realkoji", "--user", user,
               "--password", password] + list(args)
        run = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=timeout)
        if check and run.returncode != 0:
            raise AssertionError("koji %s exited %d\nstdout: %s\nstderr: %s"
                                 % (" ".join(args), run.returncode, run.stdout, run.stderr))
        return run

    def password_file(self, password=USER_PASSWORD):
        path = os.path.join(self.root, "password-%d" % len(os.listdir(self.root)))
        with open(path, "w") as f:
            f.write(password + "\n")
        os.chmod(path, 0o600)
        return path

    # -- kojid and mock ------------------------------------------------------------

    def start_farm(self, builder_conf=""):
        """The build farm: mock from its source, kojira, and a kojid for each of HOSTS
        (nodeimg's builder plugin configured with BUILDER_CONF)."""
        mocksrc = unpack(source("MOCK_SRC", "mock-*.tar.gz"), os.path.join(self.root, "src"),
                         "py/mockbuild/constants.py")
        constants = os.path.join(mocksrc, "py", "mockbuild", "constants.py")
        with open(constants) as f:
            text = f.read()
        text = re.sub(r'(?m)^VERSION = .*$', 'VERSION = "6.7"', text)
        text = re.sub(r'(?m)^SYSCONFDIR = .*$', 'SYSCONFDIR = "/etc"', text)
        with open(constants, "w") as f:
            f.write(text)
        # What every kojid's namespace adds to /usr/bin and /etc.
        self.ns_bin = os.path.join(self.root, "kojid-ns", "bin")
        self.ns_etc = os.path.join(self.root, "kojid-ns", "etc")
        for d in (self.ns_bin, os.path.join(self.ns_etc, "mock", "koji"),
                  os.path.join(self.ns_etc, "kojid", "plugins"),
                  os.path.join(self.root, "mock-cache")):
            os.makedirs(d, exist_ok=True)
        mock = os.path.join(self.ns_bin, "mock")
        with open(mock, "w") as f:
            # mock expects consolehelper/sudo to have started it for a user of group
            # mock; the ids are the namespace's (the host's own group when it has one).
            f.write("#!/bin/sh\n# mock from its source (tests/realkoji/kojienv.py)\n"
                    "exec env SUDO_UID=\"$(id -u %s)\" SUDO_GID=\"$(getent group %s | "
                    "cut -d: -f3)\" SUDO_USER=%s %s %s \"$@\"\n"
                    % (MOCK_USER, MOCK_GROUP, MOCK_USER, VENV_PYTHON,
                       os.path.join(mocksrc, "py", "mock.py")))
        os.chmod(mock, 0o755)
        shutil.copy(os.path.join(mocksrc, "etc", "mock", "logging.ini"),
                    os.path.join(self.ns_etc, "mock", "logging.ini"))
        with open(os.path.join(mocksrc, "docs", "site-defaults.cfg")) as f:
            defaults = f.read()
        with open(os.path.join(self.ns_etc, "mock", "site-defaults.cfg"), "w") as f:
            f.write(defaults + "\nconfig_opts['cache_topdir'] = %r\n"
                    % os.path.join(self.root, "mock-cache"))
        with open(os.path.join(self.ns_etc, "kojid", "plugins", "nodeimg.conf"), "w") as f:
            f.write("[nodeimg]\n" + builder_conf)
        # kojid imports multilib (`from multilib import multilib`), which only dist-repo
        # uses: an empty package is enough.
        os.makedirs(os.path.join(self.root, "stubs", "multilib"), exist_ok=True)
        for name in ("__init__.py", "multilib.py"):
            open(os.path.join(self.root, "stubs", "multilib", name), "w").close()
        self.start_kojira()
        self.kojid_logs = {}
        for name, arches in HOSTS:
            self.admin.addHost(name, arches)
            self.sql("UPDATE users SET password = '%s' WHERE name = '%s'"
                     % (HOST_PASSWORD, name))
            for channel in ("createrepo", "image"):
                self.admin.addHostToChannel(name, channel, create=True)
            # One Node install at a time per host (createNodeImage weighs 2.0): two
            # builds at once land on two hosts.
            self.admin.editHost(name, capacity=2.0)
            self.start_kojid(name)

    def start_kojira(self):
        """kojira (koji's util/kojira) as the user `kojira` with the repo permission:
        it turns the hub's repo requests into newRepo tasks and expires old repos."""
        self.sql("INSERT INTO users (name, password, status, usertype) VALUES ('%s', '%s', 0, 0)"
                 % (KOJIRA, KOJIRA_PASSWORD))
        self.admin.grantPermission(KOJIRA, "repo")
        conf = os.path.join(self.root, "kojira.conf")
        log = os.path.join(self.logs, "kojira.log")
        with open(conf, "w") as f:
            f.write("[kojira]\nserver = %s\ntopdir = %s\nlogfile = %s\nuser = %s\n"
                    "password = %s\nsleeptime = 1\ncheck_external_repos = false\n"
                    "max_retries = 30\nretry_interval = 2\n"
                    % (self.hub_url, self.topdir, log, KOJIRA, KOJIRA_PASSWORD))
        env = dict(os.environ, PYTHONPATH=self.kojisrc)
        self.procs["kojira"] = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(self.kojisrc, "util", "kojira"), "-c", conf,
             "--fg", "--force-lock", "--debug"],
            env=env, stdout=open(log + ".out", "a"), stderr=subprocess.STDOUT)

    def start_kojid(self, host):
        """kojid (builder/kojid of koji's source) as HOST. kojid runs /usr/bin/mock and
        writes /etc/mock/koji/: both are given to it in a mount namespace of its own
        (overlays on /usr/bin and /etc, writes to an upper layer of this host's), so
        nothing on this machine changes."""
        conf = os.path.join(self.root, "kojid-%s.conf" % host)
        workdir = os.path.join(self.root, "kojid-work", host)
        mockdir = os.path.join(self.root, "mock", host)
        upper = os.path.join(self.root, "kojid-ns", host)
        for d in (workdir, mockdir, os.path.join(upper, "etc-upper"),
                  os.path.join(upper, "etc-work")):
            os.makedirs(d, exist_ok=True)
        with open(conf, "w") as f:
            f.write("[kojid]\nserver = %s\ntopurl = %s\ntopdir = %s\nworkdir = %s\n"
                    "mockdir = %s\nmockuser = root\npluginpath = %s\nplugins = nodeimg\n"
                    "sleeptime = 1\nmaxjobs = 4\nminspace = 1\nuser = %s\npassword = %s\n"
                    "log_level = DEBUG\nbuildroot_basic_cleanup_delay = 0\n"
                    # A restarted hub is retried every 2 s (kojid's default is 60 s).
                    "retry_interval = 2\nmax_retries = 60\n"
                    % (self.hub_url, self.topurl, self.topdir, workdir, mockdir,
                       os.path.join(REPO, "plugin", "builder"), host, HOST_PASSWORD))
        log = os.path.join(self.logs, "kojid-%s.log" % host)
        env = dict(os.environ, PYTHONPATH="%s:%s" % (self.kojisrc,
                                                     os.path.join(self.root, "stubs")))
        self.procs["kojid-" + host] = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--",
             VENV_PYTHON, os.path.abspath(__file__), "kojid-ns", self.ns_bin, self.ns_etc,
             upper, "/usr/bin/python3", os.path.join(self.kojisrc, "builder", "kojid"),
             "-c", conf, "--fg", "--force-lock", "--debug", "--verbose"],
            env=env, stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        self.kojid_logs[host] = log

        def checked_in():
            info = self.admin.getHost(host)
            return info and self.admin.getLastHostUpdate(info["id"]) is not None
        wait_for("kojid " + host, checked_in, proc=self.procs["kojid-" + host], log=log)

    def kill_kojid(self, host):
        """kill -9 kojid HOST and everything it started (its task processes, which lead
        process groups of their own, mock, what mock runs), as a builder dies."""
        proc = self.procs.pop("kojid-" + host)
        kill_tree(proc.pid)
        proc.wait()

    def setup_node_tag(self, nodeimg_binary, rpms):
        """The koji a Node build needs: a build tag `node-build` (x86_64 and i686, mock
        options for a dnf4 host without bootstrap, repositories kept current by kojira)
        whose `livemedia-build` group is the synthetic buildroot (buildroot.py, with
        nodeimg_binary packaged as nodeimg, for each arch), holding those packages and
        `rpms` (the image's packages); a destination tag `node-candidate`; the target
        `node-target`; `releng` may build images; the build tag's repository made by
        kojid's createrepo task at kojira's request."""
        import buildroot
        a = self.admin
        a.createTag("node-build", arches="x86_64 i686", extra={
            "mock.use_bootstrap": False, "mock.package_manager": "dnf4",
            "mock.releasever": "9", "repo.auto": True})
        a.createTag("node-candidate", arches="x86_64 i686")
        a.createBuildTarget("node-target", "node-build", "node-candidate")
        a.grantPermission(USER, "image", create=True)
        work = os.path.join(self.root, "buildroot")
        os.makedirs(work)
        binary = os.path.join(work, "nodeimg")
        subprocess.run(["strip", "-o", binary, nodeimg_binary], check=True)
        built = buildroot.make(work, binary, "0.1.0", arches=["x86_64", "i686"])
        self.cli("import", "--create-build", *(built + list(rpms)), user=ADMIN,
                 password=ADMIN_PASSWORD)
        for build in a.listBuilds():
            a.packageListAdd("node-build", build["package_name"], ADMIN)
            a.tagBuildBypass("node-build", build["build_id"])
        a.groupListAdd("node-build", "livemedia-build")
        for name in ("br-filesystem", "br-host"):
            a.groupPackageListAdd("node-build", "livemedia-build", name)
        a.packageListAdd("node-candidate", UPDATE_NAME, USER)
        self.regen_repo("node-build")

    def regen_repo(self, tag, timeout=600):
        """A new repository of `tag`, as koji's `regen-repo` asks for one now: a repo
        request that kojira turns into kojid's newRepo task. Its info."""
        req = self.admin.repo.request(tag, min_event="last", force=True)["request"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.admin.repo.checkRequest(req["id"])
            if status["repo"] is not None:
                return status["repo"]
            task = status.get("task")
            if task and task["state"] in (koji.TASK_STATES["FAILED"],
                                          koji.TASK_STATES["CANCELED"]):
                raise RuntimeError("newRepo %s: %s" % (tag, self.admin.getTaskResult(
                    task["id"], raise_fault=False)))
            self.check_farm()
            time.sleep(1)
        raise RuntimeError("no repository of %s in %s s%s"
                           % (tag, timeout, tail(os.path.join(self.logs, "kojira.log"))))

    def check_farm(self):
        """Fail at once when a kojid or kojira died on its own."""
        for name, proc in self.procs.items():
            if name.startswith("kojid-") or name == "kojira":
                if proc.poll() is not None:
                    log = self.kojid_logs.get(name[len("kojid-"):]) or os.path.join(
                        self.logs, "kojira.log.out")
                    raise RuntimeError("%s died%s" % (name, tail(log)))

    def wait_task(self, task_id, timeout=900):
        """Wait for a task and its children to end; its info."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.admin.getTaskInfo(task_id)
            if info["state"] in (koji.TASK_STATES["CLOSED"], koji.TASK_STATES["FAILED"],
                                 koji.TASK_STATES["CANCELED"]):
                return info
            self.check_farm()
            time.sleep(1)
        raise RuntimeError("task %s did not end in %s s" % (task_id, timeout))

    # -- processes ---------------------------------------------------------------

    def stop(self, name):
        """SIGTERM, then SIGKILL after 15 s. kojid leads a process group of its own
        (mock and what mock runs): the whole group gets both."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return

        def send(sig):
            try:
                if name.startswith("kojid-"):
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
            except ProcessLookupError:
                pass
        send(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            if name.startswith("kojid-"):
                kill_tree(proc.pid)
            else:
                send(signal.SIGKILL)
            proc.wait()

    def close(self):
        for name in [n for n in self.procs if n.startswith("kojid-")] + [
                "kojira", "httpd", "hub", "files", "postgres", "kdc"]:
            self.stop(name)
        shutil.rmtree(self.root, ignore_errors=True)


def process_tree(pid):
    """PID and its descendants now, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                # pid (comm) state ppid ...: comm may hold spaces and parentheses.
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def kill_tree(pid):
    """SIGKILL PID and all its descendants, whatever process groups they lead: stopped
    first, until no new one appears, so that none forks away meanwhile."""
    stopped = set()
    while True:
        fresh = [p for p in process_tree(pid) if p not in stopped]
        if not fresh:
            break
        for p in fresh:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass
            stopped.add(p)
    for p in stopped:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def make_tls(directory):
    """A CA and a certificate for localhost signed by it, made with the openssl tool:
    (CA certificate, server certificate, server key)."""
    os.makedirs(directory)
    ca_key, ca, key, csr, cert = (os.path.join(directory, n) for n in
                                  ("ca.key", "ca.pem", "hub.key", "hub.csr", "hub.pem"))

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
            "-days", "2", "-subj", "/CN=nodeimg test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=localhost")
    ext = os.path.join(directory, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName = DNS:localhost\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", ext)
    return ca, cert, key


def serve(args):
    """`kojienv.py serve [--kerberos] [--kojid BUILDER-CONF --nodeimg BINARY RPM...]`:
    start the database and the hub (with --kerberos first a KDC, and httpd serving the
    hub on https with mod_auth_gssapi; with --kojid also the build farm: kojira, a
    kojid for each of HOSTS, mock, and the Node build tag made of the buildroot
    packages and RPM...), print what a test needs as one JSON line,
    then take commands on stdin, one a line, answering `ok` or `error: ...`:
    `stop-hub`, `start-hub`, `regen-repo TAG`, `kill-kojid HOST` (kill -9 of that
    builder's kojid and all it started), `start-kojid HOST`, `wait-session USER`,
    `expire-sessions USER`, `rekey NAME` (a new random key for the principal NAME).
    At end of input everything stops and goes."""
    import json
    env = RealKoji()
    try:
        kerberos = args[:1] == ["--kerberos"]
        if kerberos:
            args = args[1:]
            env.start_kdc()
        env.start_db()
        env.start_hub()
        env.admin.grantCGAccess(USER, "nodeimg", create=True)
        if kerberos:
            env.map_principals()
        if args[:1] == ["--kojid"]:
            if len(args) < 4 or args[2] != "--nodeimg":
                raise SystemExit("usage: kojienv.py serve --kojid CONF --nodeimg BINARY RPM...")
            env.start_farm(args[1].replace("\\n", "\n"))
            env.setup_node_tag(args[3], args[4:])
        print(json.dumps({
            "hub": env.hub_url, "topurl": env.topurl, "topdir": env.topdir,
            "root": env.root, "admin": ADMIN, "admin_password_file":
            env.password_file(ADMIN_PASSWORD), "user": USER,
            "password_file": env.password_file(USER_PASSWORD), "cg": "nodeimg",
            "koji_cli": KOJI_CLI, "cli_config": env.cli_config(), "profile": "realkoji",
            "password": USER_PASSWORD,
            "hub_https": getattr(env, "hub_https", None),
            "serverca": getattr(env, "tls_ca", None),
            "kerberos": getattr(env, "krb", None),
        }), flush=True)
        for line in sys.stdin:
            command = line.strip()
            try:
                if command == "stop-hub":
                    env.stop_hubserver()
                elif command == "start-hub":
                    env.start_hubserver()
                elif command.startswith("wait-session "):
                    env.wait_session(command.split(None, 1)[1])
                elif command.startswith("rekey "):
                    env.rekey(command.split(None, 1)[1])
                elif command.startswith("expire-sessions "):
                    env.expire_sessions(command.split(None, 1)[1])
                elif command.startswith("kill-kojid "):
                    env.kill_kojid(command.split(None, 1)[1])
                elif command.startswith("start-kojid "):
                    env.start_kojid(command.split(None, 1)[1])
                elif command.startswith("regen-repo "):
                    env.regen_repo(command.split(None, 1)[1])
                else:
                    raise ValueError("unknown command %r" % command)
                print("ok", flush=True)
            except Exception as e:
                print("error: %s" % e, flush=True)
    finally:
        env.close()


def kojid_namespace(extra_bin, extra_etc, ns, *command):
    """Inside `unshare --mount`: /usr/bin with mock added, /etc with /etc/mock and
    /etc/kojid added (writes go to an upper layer of our own), mock's group and user
    (the host's own when it has them, else made in the upper layer); then kojid. Runs
    only in the namespace kojienv made for it."""
    def mount(*args):
        subprocess.run(["mount"] + list(args), check=True)
    mount("-t", "overlay", "overlay", "-o", "lowerdir=%s:/usr/bin" % extra_bin, "/usr/bin")
    mount("-t", "overlay", "overlay", "-o", "lowerdir=%s:/etc,upperdir=%s,workdir=%s"
          % (extra_etc, os.path.join(ns, "etc-upper"), os.path.join(ns, "etc-work")), "/etc")
    import grp
    import pwd
    try:
        grp.getgrnam(MOCK_GROUP)
    except KeyError:
        subprocess.run(["groupadd", "-r", MOCK_GROUP], check=True)
    try:
        pwd.getpwnam(MOCK_USER)
    except KeyError:
        subprocess.run(["useradd", "-r", "-g", MOCK_GROUP, "-M", "-d", "/nonexistent",
                        MOCK_USER], check=True)
    os.execv(command[0], list(command))


if __name__ == "__main__":
    if sys.argv[1:2] == ["kojid-ns"]:
        kojid_namespace(*sys.argv[2:])
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: kojienv.py serve [--kerberos] [--kojid CONF --nodeimg BINARY RPM...]")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(sys.argv[2:])
